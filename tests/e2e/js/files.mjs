// Runs @google/genai's Files API against a live gateway and prints one JSON object with what
// it saw. Environment: BASE (gateway base URL), KEY (API key), MODEL (a Gemini-upstream model).
import { GoogleGenAI, createPartFromUri } from "@google/genai";

const ai = new GoogleGenAI({ apiKey: process.env.KEY, httpOptions: { baseUrl: process.env.BASE } });
// Larger than the SDK's 8 MiB piece, so the upload takes two.
const size = 9 * 1024 * 1024;
const bytes = new Uint8Array(size).fill(46);
bytes.set(new TextEncoder().encode("JS upload"));
const uploaded = await ai.files.upload({
  file: new Blob([bytes], { type: "text/plain" }),
  config: { displayName: "from-js.txt", mimeType: "text/plain" },
});
const got = await ai.files.get({ name: uploaded.name });
const listed = [];
for await (const file of await ai.files.list({ config: { pageSize: 5 } })) {
  listed.push(file.name);
}
const response = await ai.models.generateContent({
  model: process.env.MODEL,
  contents: [createPartFromUri(uploaded.uri, uploaded.mimeType), "What does it say?"],
});
await ai.files.delete({ name: uploaded.name });
let deletedThenGet = null;
try {
  await ai.files.get({ name: uploaded.name });
} catch (caught) {
  deletedThenGet = caught.status ?? null;
}
console.log(JSON.stringify({ size, uploaded, got, listed, text: response.text, deletedThenGet }));
