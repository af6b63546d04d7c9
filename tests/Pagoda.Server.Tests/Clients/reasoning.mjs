// The OpenAI Node SDK against a Pagoda server whose chat template opens a <think> block (deepseek_r1 parser):
// the reasoning arrives in reasoning_content (whole and streamed) and not in content.
// Usage: node reasoning.mjs BASE_URL API_KEY MODEL. Prints "ok <check>"; exits 1 at the first failure.
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const openai = new OpenAI({ baseURL, apiKey });
const assert = (cond, what) => { if (!cond) throw new Error(what); };
try {
  const r = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Tell me a joke" }], temperature: 0, max_tokens: 24 });
  const m = r.choices[0].message;
  assert(typeof m.reasoning_content === "string" && m.reasoning_content.length > 0, JSON.stringify(m));
  assert(m.reasoning === m.reasoning_content, "reasoning mirrors reasoning_content");
  assert(m.content === null, `content: ${JSON.stringify(m.content)}`);
  console.log("ok reasoning_content in a response");

  const stream = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "Tell me a joke" }], temperature: 0, max_tokens: 24, stream: true });
  let reasoning = "", content = "";
  for await (const chunk of stream) {
    reasoning += chunk.choices[0]?.delta?.reasoning_content ?? "";
    content += chunk.choices[0]?.delta?.content ?? "";
  }
  assert(reasoning === m.reasoning_content && content === "", `streamed: ${JSON.stringify({ reasoning, content })}`);
  console.log("ok reasoning_content streamed");
} catch (e) {
  console.log(`FAIL ${e?.stack ?? e}`);
  process.exit(1);
}
