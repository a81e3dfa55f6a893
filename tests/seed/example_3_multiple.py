@rt.function_node
async def farewell(name: str) -> str:
    return f"Bye, {name}!"

@rt.session(context={"action": "greet", "name": "Diana"}, logging_setting="QUIET")
async def first_workflow():
    if rt.context.get("action") == "greet":
        return await rt.call(greet, rt.context.get("name"))

@rt.session(context={"action": "farewell", "name": "Robert"}, logging_setting="QUIET")
async def second_workflow():
    if rt.context.get("action") == "farewell":
        return await rt.call(farewell, rt.context.get("name"))

# Run independently
result1, session1 = asyncio.run(first_workflow())
result2, _ = asyncio.run(second_workflow()) # if we don't want to work with Session Object
print(result1) # "Hello, Diana!"
print(result2) # "Bye, Robert!"
