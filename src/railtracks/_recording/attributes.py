"""Every span attribute key and event name railtracks writes, in one place.

The console printer, the saved state and the tests read spans through these
names only, so a key is renamed here or nowhere.
"""

from typing import Final

# -- session and node identity ------------------------------------------------
SESSION_ID: Final = "railtracks.session.id"
SESSION_NAME: Final = "railtracks.session.name"
SESSION_TIMEOUT: Final = "railtracks.session.timeout"
SESSION_ANSWER: Final = "railtracks.session.answer"
SESSION_SAVE_STATE: Final = "railtracks.session.save_state"
LOGGING_SETTING: Final = "railtracks.logging_setting"
CONTEXT_PREFIX: Final = "railtracks.context."
# The context as it is when the session ends, on the session span only, written (with
# SESSION_CONTEXT_CHANGED = True) when it was changed during the session; without
# them the final context is the context at the start.
FINAL_CONTEXT_PREFIX: Final = "railtracks.final_context."
SESSION_CONTEXT_CHANGED: Final = "railtracks.session.context_changed"

NODE_NAME: Final = "railtracks.node.name"
NODE_KIND: Final = "railtracks.node.kind"
NODE_INPUT: Final = "railtracks.node.input"
NODE_OUTPUT: Final = "railtracks.node.output"

# Where a node call ran when an executor (SPEC 12) ran it in another process.
WORKER_PID: Final = "railtracks.worker.pid"
WORKER_HOST: Final = "railtracks.worker.host"

# Final status of a session or node span: completed, failed, timeout, cancelled.
STATUS: Final = "railtracks.status"

# -- conventions shared with other backends -----------------------------------
# OpenInference (Arize Phoenix) groups traces into sessions by this key.
OPENINFERENCE_SESSION_ID: Final = "session.id"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
ERROR_TYPE: Final = "error.type"

# OpenInference (Arize Phoenix, and Langfuse's mapping): span kind and payloads.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
SPAN_KIND_CHAIN: Final = "CHAIN"
SPAN_KIND_TOOL: Final = "TOOL"
MIME_JSON: Final = "application/json"
MIME_TEXT: Final = "text/plain"
TOOL_TYPE_FUNCTION: Final = "function"

OPERATION_WORKFLOW: Final = "invoke_workflow"
OPERATION_TOOL: Final = "execute_tool"
NODE_KIND_FUNCTION: Final = "function"

# -- span events ----------------------------------------------------------------
EVENT_CONTEXT_CHANGE: Final = "railtracks.context.change"
CONTEXT_CHANGE_OPERATION: Final = "railtracks.context.operation"
CONTEXT_CHANGE_KEYS: Final = "railtracks.context.keys"

EVENT_BROADCAST: Final = "railtracks.broadcast"
BROADCAST_MESSAGE: Final = "railtracks.broadcast.message"

EVENT_LOG: Final = "railtracks.log"
LOG_LEVEL: Final = "railtracks.log.level"
LOG_MESSAGE: Final = "railtracks.log.message"
LOG_COMPONENT: Final = "railtracks.log.component"

# -- status vocabulary ------------------------------------------------------------
STATUS_RUNNING: Final = "running"
STATUS_COMPLETED: Final = "completed"
STATUS_FAILED: Final = "failed"
STATUS_TIMEOUT: Final = "timeout"
STATUS_CANCELLED: Final = "cancelled"

UNNAMED_SESSION: Final = "unnamed"

# -- limits: what a bound cut, counted (SPEC 3 "Limits never lose identity") -----
DROPPED_CONTEXT_KEYS: Final = "railtracks.dropped.context_keys"
DROPPED_FINAL_CONTEXT_KEYS: Final = "railtracks.dropped.final_context_keys"
DROPPED_EVENTS: Final = "railtracks.dropped.events"

# -- the run journal (SPEC 13): statuses a state read from a journal can hold
STATUS_CRASHED: Final = "crashed"  # the session's process died before the session ended
STATUS_UNFINISHED: Final = "unfinished"  # a node still running when its process died

# -- resume, replay and diff (SPEC 14): the call key and recorded values --------
# Hex SHA-256 of the canonical JSON of a call's bound arguments (the call key's digest).
NODE_ARGS_DIGEST: Final = "railtracks.node.args_digest"
# The node's output in full, as JSON, when railtracks.node.output is not it (cut at the
# value limit, or a value whose shown form is not its JSON: a datetime, an enum...).
NODE_RECORDED_OUTPUT: Final = "railtracks.node.recorded_output"
# Why this call cannot be replayed (redacted, too large, unencodable); absent when it can.
NODE_UNREPLAYABLE: Final = "railtracks.node.unreplayable"
# A call answered from a recorded run instead of running, linked to the original span.
NODE_REPLAYED: Final = "railtracks.node.replayed"
# On a context change event: the changed values in full, as JSON (or why they are not).
CONTEXT_CHANGE_RECORDED: Final = "railtracks.context.recorded"
CONTEXT_CHANGE_UNREPLAYABLE: Final = "railtracks.context.unreplayable"
# On the session span: how many of its calls were replayed.
SESSION_REPLAYED: Final = "railtracks.session.replayed"

# -- model calls: tokens and cost (SPEC 15) ---------------------------------------
# Read from other instrumentation's spans: the GenAI conventions, older names of
# them, and OpenInference's.
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM: Final = "gen_ai.system"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_PROMPT_TOKENS: Final = "llm.token_count.prompt"
LLM_COMPLETION_TOKENS: Final = "llm.token_count.completion"
LLM_CACHE_READ_TOKENS: Final = "llm.token_count.prompt_details.cache_read"
LLM_REASONING_TOKENS: Final = "llm.token_count.completion_details.reasoning"
# rt.record_usage(...) on the current node's span: one event per call, with the
# GenAI keys above as its attributes.
EVENT_USAGE: Final = "railtracks.usage"
# A node's and a session's totals (own calls and descendants'), set when it ends.
USAGE_CALLS: Final = "railtracks.usage.calls"
USAGE_INPUT_TOKENS: Final = "railtracks.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "railtracks.usage.output_tokens"
USAGE_CACHED_INPUT_TOKENS: Final = "railtracks.usage.cached_input_tokens"
USAGE_REASONING_TOKENS: Final = "railtracks.usage.reasoning_tokens"
USAGE_MODELS: Final = "railtracks.usage.models"
USAGE_COST_USD: Final = "railtracks.usage.cost_usd"  # a decimal string: exact, never a float
USAGE_BY_MODEL: Final = "railtracks.usage.by_model"  # JSON: the state's "usage" "models"
# Models without a price when others have one: the cost counts the others only.
USAGE_UNPRICED_MODELS: Final = "railtracks.usage.unpriced_models"
