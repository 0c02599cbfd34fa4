// The official Node SDK's Assistants stream helpers against Spindle, for tests/e2e/test_node_sdk.py.
// Usage: node stream_run.mjs text|tools|create_and_run <assistant_id> [thread_id]
//        node stream_run.mjs submit_while_open toolCallDone|event <assistant_id>:<thread_id>,...
// (SPINDLE_BASE_URL and SPINDLE_API_KEY in the environment). Prints one JSON line per thing heard,
// as it is heard, so the test can watch the stream arrive.
import OpenAI from "openai";

const [mode, assistantId, threadId] = process.argv.slice(2);
const client = new OpenAI({ baseURL: process.env.SPINDLE_BASE_URL, apiKey: process.env.SPINDLE_API_KEY, maxRetries: 0 });
const say = (line) => process.stdout.write(JSON.stringify(line) + "\n");

function heard(stream) {
  stream.on("event", (event) => say({ event: event.event }));
  stream.on("textDelta", (delta) => say({ textDelta: delta.value }));
  stream.on("toolCallDelta", (delta) => {
    if (delta.type === "function" && delta.function?.arguments) say({ argumentsDelta: delta.function.arguments });
  });
  return stream;
}

if (mode === "text") {
  const run = await heard(client.beta.threads.runs.stream(threadId, { assistant_id: assistantId })).finalRun();
  say({ final: run.status, run_id: run.id });
} else if (mode === "tools") {
  const first = await heard(client.beta.threads.runs.stream(threadId, { assistant_id: assistantId })).finalRun();
  say({ final: first.status, run_id: first.id });
  const call = first.required_action.submit_tool_outputs.tool_calls[0];
  const outputs = { thread_id: threadId, tool_outputs: [{ tool_call_id: call.id, output: "21C" }] };
  const after = await heard(client.beta.threads.runs.submitToolOutputsStream(first.id, outputs)).finalRun();
  say({ final: after.status, run_id: after.id });
} else if (mode === "create_and_run") {
  const thread = { messages: [{ role: "user", content: "Hi" }] };
  const run = await heard(client.beta.threads.createAndRunStream({ assistant_id: assistantId, thread })).finalRun();
  say({ final: run.status, run_id: run.id, thread_id: run.thread_id });
} else if (mode === "submit_while_open") {
  // Submit each function call's output from a listener of the first stream, without waiting for that
  // stream to end (`toolCallDone`, or `event` at thread.run.requires_action): one line per run.
  const [pattern, runs] = [assistantId, threadId];
  for (const pair of runs.split(",")) {
    const [assistant, thread] = pair.split(":");
    const first = [];
    const after = [];
    const pending = [];
    let runId = null;
    const submit = (callId) => {
      const next = client.beta.threads.runs.submitToolOutputsStream(runId, {
        thread_id: thread,
        tool_outputs: [{ tool_call_id: callId, output: "21C" }],
      });
      next.on("event", (event) => after.push(event.event));
      pending.push(next.finalRun());
    };
    const stream = client.beta.threads.runs.stream(thread, { assistant_id: assistant });
    stream.on("event", (event) => {
      first.push(event.event);
      if (event.event === "thread.run.created") runId = event.data.id;
      if (pattern === "event" && event.event === "thread.run.requires_action") {
        for (const call of event.data.required_action.submit_tool_outputs.tool_calls) submit(call.id);
      }
    });
    stream.on("toolCallDone", (call) => {
      if (pattern === "toolCallDone" && call.type === "function") submit(call.id);
    });
    await stream.done();
    const finals = await Promise.all(pending);
    say({ first, after, submissions: pending.length, final: finals.at(-1)?.status });
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
