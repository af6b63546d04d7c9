// Real agent clients against a Pagoda server: the official OpenAI Node SDK, the Vercel AI SDK and LangChain JS.
// Usage: node agents.mjs BASE_URL API_KEY MODEL. Prints "ok <check>" per passing check; exits 1 at the first failure.
import OpenAI from "openai";
import { zodResponseFormat, zodFunction } from "openai/helpers/zod";
import { generateText, generateObject, tool, stepCountIs } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { tool as lcTool } from "@langchain/core/tools";
import { z } from "zod";

globalThis.AI_SDK_LOG_WARNINGS = false; // generateObject is deprecated in favour of generateText's output: still what apps call

const [baseURL, apiKey, model] = process.argv.slice(2);
const assert = (cond, what) => { if (!cond) throw new Error(what); };
const Weather = z.object({ city: z.enum(["Paris", "Oslo", "Lima"]), days: z.number().int().min(1).max(7) });
const Rating = z.object({ mood: z.enum(["happy", "sad"]), score: z.number().int().min(0).max(9) });
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

const openai = new OpenAI({ baseURL, apiKey });

check("openai parse with a zod response_format", async () => {
  const r = await openai.chat.completions.parse({
    model, messages: [{ role: "user", content: "How do you feel? JSON please." }], temperature: 0, max_tokens: 200,
    response_format: zodResponseFormat(Rating, "rating"),
  });
  const m = r.choices[0].message;
  assert(m.parsed && Rating.safeParse(m.parsed).success, `not a rating: ${m.content}`);
});

check("openai json_object mode", async () => {
  const r = await openai.chat.completions.create({
    model, messages: [{ role: "user", content: "A JSON object, please." }], temperature: 0, max_tokens: 60,
    response_format: { type: "json_object" },
  });
  assert(r.choices[0].message.content.trimStart().startsWith("{"), r.choices[0].message.content);
});

check("openai required tool call, tool result, next turn", async () => {
  const tools = [zodFunction({ name: "get_weather", parameters: Weather })];
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const first = await openai.chat.completions.parse({ model, messages, tools, tool_choice: "required", temperature: 0, max_tokens: 80 });
  const call = first.choices[0].message.tool_calls?.[0];
  assert(call?.function.name === "get_weather", JSON.stringify(first.choices[0].message));
  assert(Weather.safeParse(call.function.parsed_arguments).success, call.function.arguments);
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "Sunny, 21 C" });
  const second = await openai.chat.completions.create({ model, messages, tools, tool_choice: "none", temperature: 0, max_tokens: 12 });
  assert(typeof second.choices[0].message.content === "string", "no text after the tool result");
});

check("openai streamed named tool call", async () => {
  const stream = await openai.chat.completions.create({
    model, messages: [{ role: "user", content: "Weather?" }], stream: true, temperature: 0, max_tokens: 80,
    tools: [zodFunction({ name: "get_weather", parameters: Weather })],
    tool_choice: { type: "function", function: { name: "get_weather" } },
  });
  let name = "", args = "", id = "";
  for await (const chunk of stream)
    for (const t of chunk.choices[0]?.delta?.tool_calls ?? []) {
      assert(t.index === 0, "one call");
      id ||= t.id ?? ""; name ||= t.function?.name ?? ""; args += t.function?.arguments ?? "";
    }
  assert(name === "get_weather" && id.startsWith("chatcmpl-tool-"), `${id} ${name}`);
  assert(Weather.safeParse(JSON.parse(args)).success, args);
});

const provider = createOpenAICompatible({ name: "pagoda", baseURL, apiKey, supportsStructuredOutputs: true });

check("ai-sdk generateObject", async () => {
  const { object } = await generateObject({ model: provider(model), schema: Rating, prompt: "Rate your mood.", temperature: 0, maxOutputTokens: 200 });
  assert(Rating.safeParse(object).success, JSON.stringify(object));
});

check("ai-sdk tools: required, then named, in a two-step loop", async () => {
  for (const toolChoice of ["required", { type: "tool", toolName: "weather" }]) {
    let executed = 0;
    const result = await generateText({
      model: provider(model), prompt: "What's the weather in Oslo?", temperature: 0, maxOutputTokens: 60,
      tools: { weather: tool({ description: "Weather of a city", inputSchema: Weather, execute: async (input) => { executed++; return `Sunny in ${input.city}`; } }) },
      toolChoice, stopWhen: stepCountIs(2), providerOptions: { pagoda: { parallel_tool_calls: false } },
      prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: "none" } : undefined),
    });
    assert(executed === 1, `tool executed ${executed} times with toolChoice ${JSON.stringify(toolChoice)}`);
    assert(result.steps.length === 2, `steps: ${result.steps.length}`);
  }
});

// Room for the whitespace JSON allows (up to 20 bytes a gap), whatever the kernels' last bits on this machine.
const chat = new ChatOpenAI({ model, apiKey, temperature: 0, maxTokens: 200, configuration: { baseURL } });

check("langchain withStructuredOutput: function calling, json schema, json mode", async () => {
  for (const method of ["functionCalling", "jsonSchema"]) {
    const out = await chat.withStructuredOutput(Rating, { name: "rating", method }).invoke("Rate your mood.");
    assert(Rating.safeParse(out).success, `${method}: ${JSON.stringify(out)}`);
  }
  const raw = await chat.withStructuredOutput(Rating, { name: "rating", method: "jsonMode", includeRaw: true }).invoke("Rate your mood in JSON.");
  assert(typeof raw.raw.content === "string" && raw.raw.content.trimStart().startsWith("{"), JSON.stringify(raw.raw.content));
});

check("langchain bindTools with a forced call", async () => {
  const weather = lcTool(async ({ city }) => `Sunny in ${city}`, { name: "get_weather", description: "Weather of a city", schema: Weather });
  const ai = await chat.bindTools([weather], { tool_choice: "get_weather" }).invoke("Weather in Lima?");
  assert(ai.tool_calls?.[0]?.name === "get_weather" && Weather.safeParse(ai.tool_calls[0].args).success, JSON.stringify(ai.tool_calls));
});

for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}
