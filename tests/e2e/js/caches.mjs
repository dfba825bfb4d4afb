// Runs @google/genai's ai.caches against a live gateway and prints one JSON object with what
// it saw. Environment: BASE (gateway base URL), KEY (API key), MODEL (model id).
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({ apiKey: process.env.KEY, httpOptions: { baseUrl: process.env.BASE } });
const model = process.env.MODEL;
const handbook = "The handbook says the north gate opens at seven and closes at nine.";

const cache = await ai.caches.create({
  model,
  config: {
    displayName: "handbook",
    systemInstruction: "Answer in one short sentence.",
    contents: [{ role: "user", parts: [{ text: handbook }] }],
    ttl: "300s",
  },
});
const config = { cachedContent: cache.name, maxOutputTokens: 4, temperature: 0 };
const answers = [];
for (const question of ["When does the gate open?", "When does it close?"]) {
  const response = await ai.models.generateContent({ model, contents: question, config });
  answers.push({ text: response.text ?? "", usage: response.usageMetadata });
}
const got = await ai.caches.get({ name: cache.name });
const updated = await ai.caches.update({ name: cache.name, config: { ttl: "600s" } });
const listed = [];
for await (const item of await ai.caches.list({ config: { pageSize: 5 } })) {
  listed.push(item.name);
}
await ai.caches.delete({ name: cache.name });
let afterDelete = null;
try {
  await ai.caches.get({ name: cache.name });
} catch (caught) {
  afterDelete = { status: caught.status ?? null, message: caught.message };
}

console.log(JSON.stringify({ cache, answers, got, updated, listed, afterDelete }));
