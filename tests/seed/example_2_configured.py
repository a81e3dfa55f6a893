@rt.session(
    timeout=30, # 30 second timeout
    context={"user_id": "123"}, # Global context variables
    logging_setting="QUIET", # Enable debug logging
    save_state=True, # Save execution state to file
    name="my-unique-run", # Custom session name
)
async def configured_workflow():
    result1 = await rt.call(greet, name="Bob")
    result2 = await rt.call(greet, name="Charlie")
    return [result1, result2]

result, session = asyncio.run(configured_workflow())
print(result) # ['Hello, Bob!', 'Hello, Charlie!']
print(f"Session ID: {session._identifier}")
