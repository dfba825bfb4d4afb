// Runs @google/genai against a live gateway and prints one JSON object with what it saw.
// Environment: BASE (gateway base URL), KEY (API key), MODEL (model id).
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({ apiKey: process.env.KEY, httpOptions: { baseUrl: process.env.BASE } });
const model = process.env.MODEL;
// Small outputs keep the run short on a 2-core machine.
const config = { maxOutputTokens: 16, temperature: 0, seed: 7 };

const response = await ai.models.generateContent({ model, contents: "Hi!", config });
const generate = {
  text: response.text,
  finishReason: response.candidates?.[0]?.finishReason,
  usage: response.usageMetadata,
};

const chunks = [];
const stream = await ai.models.generateContentStream({
  model, contents: "Write a haiku about stars", config,
});
for await (const chunk of stream) {
  chunks.push({
    text: chunk.text ?? "",
    finishReason: chunk.candidates?.[0]?.finishReason ?? null,
    usage: chunk.usageMetadata ?? null,
  });
}

let error = null;
try {
  await ai.models.generateContent({ model: "no-such-model", contents: "Hi!", config });
} catch (caught) {
  error = { name: caught.constructor.name, status: caught.status ?? null, message: caught.message };
}

console.log(JSON.stringify({ sdkVersion: await sdkVersion(), generate, chunks, error }));

async function sdkVersion() {
  const { readFile } = await import("node:fs/promises");
  const url = new URL("./node_modules/@google/genai/package.json", import.meta.url);
  return JSON.parse(await readFile(url, "utf8")).version;
}
