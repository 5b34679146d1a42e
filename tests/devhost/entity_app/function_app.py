"""A small app for devhost's entity tests: a counter entity and orchestrators that use it."""

import azure.durable_functions as df

app = df.DFApp()


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "get":
        context.set_result(value)
    elif operation == "fail":
        raise ValueError("counter refuses")
    else:
        raise ValueError(f"unknown operation {operation}")
    context.set_state(value)


@app.orchestration_trigger(context_name="context")
def use_counter(context: df.DurableOrchestrationContext):
    """Signal, call, catch an operation's error, then signal again as the last action."""
    key = context.get_input()
    entity = df.EntityId("Counter", key)
    context.signal_entity(entity, "add", 10)
    first = yield context.call_entity(entity, "get")
    yield context.call_entity(entity, "add", 5)
    second = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "fail")
        error = None
    except Exception as exc:
        error = str(exc)
    third = yield context.call_entity(entity, "get")
    context.signal_entity(entity, "add", 100)  # sent by the episode that completes the run
    return {"first": first, "second": second, "error": error, "third": third}


@app.orchestration_trigger(context_name="context")
def read_counter(context: df.DurableOrchestrationContext):
    return (yield context.call_entity(df.EntityId("Counter", context.get_input()), "get"))
