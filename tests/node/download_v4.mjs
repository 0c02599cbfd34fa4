// openai-node 4.x (the version OpenAI's Next.js assistants sample uses) downloading files, as that
// sample's routes do: `openai.files.content(id)`, which sends `Accept: application/json`.
// Usage: node download_v4.mjs <file_id>... (SPINDLE_BASE_URL and SPINDLE_API_KEY in the environment).
// Prints one JSON line per file: its status, content type and bytes (base64).
import OpenAI from "openai-v4";

const client = new OpenAI({ baseURL: process.env.SPINDLE_BASE_URL, apiKey: process.env.SPINDLE_API_KEY, maxRetries: 0 });
for (const fileId of process.argv.slice(2)) {
  const response = await client.files.content(fileId);
  const bytes = Buffer.from(await response.arrayBuffer());
  const line = { status: response.status, contentType: response.headers.get("content-type"), base64: bytes.toString("base64") };
  process.stdout.write(JSON.stringify(line) + "\n");
}
