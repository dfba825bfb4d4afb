// Runs @google/genai's batches against a live gateway: one inline batch polled to its end,
// printed as one JSON object. Environment: BASE (gateway base URL), KEY (API key), MODEL.
import { GoogleGenAI } from "@google/genai";

const ai = new GoogleGenAI({ apiKey: process.env.KEY, httpOptions: { baseUrl: process.env.BASE } });
const questions = ["first question", "second question", "third question"];

const created = await ai.batches.create({
  model: process.env.MODEL,
  src: questions.map((text, i) => ({
    contents: [{ role: "user", parts: [{ text }] }],
    metadata: { key: `js-${i}` },
  })),
  config: { displayName: "from node" },
});

let job = created;
const states = [created.state];
for (let i = 0; i < 300 && !["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
  "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"].includes(job.state); i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  job = await ai.batches.get({ name: created.name });
  states.push(job.state);
}

const answers = (job.dest?.inlinedResponses ?? []).map((item) => ({
  key: item.metadata?.key ?? null,
  text: item.response?.text ?? null,
  error: item.error ?? null,
}));
const listed = [];
for await (const listedJob of await ai.batches.list({ config: { pageSize: 10 } })) {
  listed.push(listedJob.name);
}
console.log(JSON.stringify({
  name: created.name, displayName: job.displayName, states, answers, listed,
}));
