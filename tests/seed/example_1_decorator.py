@rt.function_node
async def greet(name: str) -> str:
    return f"Hello, {name}!"

@rt.session()
async def empty_workflow():
    result = await rt.call(greet, name="Alice")
    return result

# Run your workflow
result, session = asyncio.run(empty_workflow())
print(result) # "Hello, Alice!"
print(f"Session ID: {session._identifier}")
