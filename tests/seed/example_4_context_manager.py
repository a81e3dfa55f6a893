async def context_workflow():
    with rt.Session(
        timeout=30, # 30 second timeout
        context={"user_id": "123"}, # Global context variables
        logging_setting="QUIET", # Enable debug logging
        save_state=True, # Save execution state to file
        name="my-unique-run", # Custom session name
    ):
        result1 = await rt.call(greet, name="Bob")
        result2 = await rt.call(greet, name="Charlie")
        return [result1, result2]

result = asyncio.run(context_workflow())
print(result) # ['Hello, Bob!', 'Hello, Charlie!']
