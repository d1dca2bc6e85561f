// The playground: POST /explain for one text, then the label, probabilities, attributions and
// layers. Everything is written with textContent (never innerHTML): the texts are the user's.
"use strict";

const form = document.getElementById("explain-form");
const textInput = document.getElementById("text");
const keyInput = document.getElementById("api-key");
const button = document.getElementById("explain");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function fixed(value, digits = 3) {
  return Number(value).toFixed(digits);
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  result.hidden = true;
}

function renderProbabilities(probabilities, label) {
  const box = document.getElementById("probabilities");
  box.replaceChildren();
  for (const [name, p] of Object.entries(probabilities)) {
    const row = element("div", undefined, name === label ? "bar-row chosen" : "bar-row");
    const id = `p-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const caption = element("label", name);
    caption.htmlFor = id;
    const meter = element("meter");
    meter.id = id;
    meter.min = 0;
    meter.max = 1;
    meter.value = p;
    row.append(caption, meter, element("span", fixed(p), "value"));
    box.append(row);
  }
}

// Colour scale: the strongest attribution of the text is full colour, so a weak prediction's
// words are still told apart.
function renderTokens(tokens, attributions, label) {
  const box = document.getElementById("tokens");
  box.replaceChildren();
  document.getElementById("tokens-label").textContent = label;
  const strongest = Math.max(1e-9, ...attributions.map(Math.abs));
  tokens.forEach((token, i) => {
    const value = attributions[i];
    const span = element("span", token, value >= 0 ? "token supports" : "token opposes");
    const alpha = Math.min(1, Math.abs(value) / strongest);
    const rgb = value >= 0 ? "22, 163, 74" : "220, 38, 38";
    span.style.backgroundColor = `rgba(${rgb}, ${fixed(alpha * 0.75, 2)})`;
    span.title = `${token}: ${value >= 0 ? "+" : ""}${fixed(value)}`;
    box.append(span, " ");
  });
}

function table(headers, rows) {
  const tableNode = element("table");
  const head = element("tr");
  headers.forEach((h) => head.append(element("th", h)));
  tableNode.append(head);
  rows.forEach((cells) => {
    const row = element("tr");
    cells.forEach((cell) => row.append(element("td", String(cell))));
    tableNode.append(row);
  });
  return tableNode;
}

function layer(title, summary, content) {
  const details = element("details");
  details.append(element("summary", title));
  details.append(element("p", summary));
  if (content) details.append(content);
  return details;
}

function renderLayers(explanation) {
  const { input, embedding, rnn, dense, ngrams, softmax } = explanation.layers;
  const scores = (logits) => Object.entries(logits).map(([l, v]) => `${l} ${fixed(v)}`).join(", ");
  const labels = Object.keys(explanation.attributions);
  const box = document.getElementById("layers");
  box.replaceChildren(
    layer(
      "1. Input: words to vocabulary ids",
      `${input.tokens.length} tokens${input.truncated ? " (text truncated)" : ""}, ` +
        `${input.unknown.filter(Boolean).length} unknown to the vocabulary.`,
      table(
        ["token", "id", "unknown", ...labels.map((l) => `toward ${l}`)],
        input.tokens.map((t, i) => [
          t,
          input.ids[i],
          input.unknown[i] ? "yes" : "",
          ...labels.map((l) => fixed(explanation.attributions[l][i])),
        ]),
      ),
    ),
    layer(
      "2. Embedding: one vector per token",
      `shape [${embedding.shape.join(", ")}]; the length (L2 norm) of each token's vector:`,
      table(["token", "norm"], input.tokens.map((t, i) => [t, fixed(embedding.norms[i])])),
    ),
    layer(
      "3. RNN: a hidden state per time step, pooled",
      `shape [${rnn.shape.join(", ")}], ${rnn.pooling} pooling into ` +
        `${rnn.pooled_features} features; the length of the hidden state after each token:`,
      table(["step", "token", "norm"], input.tokens.map((t, i) => [i + 1, t, fixed(rnn.step_norms[i])])),
    ),
    layer(
      "4. Dense: one score (logit) per class",
      scores(dense.logits) +
        (ngrams ? `; of which the n-gram branch (${ngrams.buckets} pair buckets): ${scores(ngrams.logits)}` : ""),
    ),
    layer(
      "5. Softmax: probabilities",
      Object.entries(softmax.probabilities).map(([l, v]) => `${l} ${fixed(v)}`).join(", ") +
        `; label: ${softmax.label}`,
    ),
  );
}

function render(explanation) {
  errorBox.hidden = true;
  document.getElementById("label").textContent = explanation.label;
  document.getElementById("score").textContent = `(${fixed(explanation.score)})`;
  renderProbabilities(explanation.probabilities, explanation.label);
  renderTokens(
    explanation.layers.input.tokens,
    explanation.attributions[explanation.label],
    explanation.label,
  );
  renderLayers(explanation);
  result.hidden = false;
}

async function explain() {
  const headers = { "Content-Type": "application/json" };
  const key = keyInput.value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  button.disabled = true;
  try {
    const response = await fetch("/explain", {
      method: "POST",
      headers,
      body: JSON.stringify({ texts: [textInput.value] }),
    });
    const body = await response.json();
    if (!response.ok) {
      showError(`${response.status}: ${body.error ? body.error.message : response.statusText}`);
      if (response.status === 401) keyInput.focus();
      return;
    }
    render(body.results[0]);
  } catch (error) {
    showError(`The service did not answer: ${error}`);
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  explain();
});
textInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});
