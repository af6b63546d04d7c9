// Offline validation of the manifests in a folder (deploy/k8s), with no cluster:
//  1. schema: every object of a built-in kind is validated by kubernetes-models, whose validators are generated from
//     Kubernetes' own OpenAPI spec (types, required fields, enums, formats);
//  2. unknown fields: every object is also written as a typed TypeScript literal and compiled with tsc --strict, so a
//     misspelt or invented field is an excess-property error (kubeconform's -strict); InferencePool against the v1
//     CRD's fields (inferencepool.d.ts);
//  3. the InferencePool v1 CRD's value rules (ranges, label patterns, the port an endpointPickerRef of kind Service
//     needs, enums), which its OpenAPI schema and CEL rule state;
//  4. cross-references: the pool selects the Pagoda pods and targets their port, its endpointPickerRef is a Service of
//     the EPP on the named port, Services select pods, the EPP config's pluginRefs exist, and each Pagoda container has
//     the engine-type label, /health probes, vLLM metric names, a grace period covering preStop + --shutdown-timeout,
//     a --block-size equal to the router's blockSize and a KV events endpoint on the router's socketPort.
// Usage: node validate.mjs DIR   (prints one line per check and the closing "N passed, N failed").
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.argv[2] ?? join(here, ".."));
let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
}

const docs = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"), { uniqueKeys: true })) {
    check(doc.errors.length === 0, `${file}: document ${docs.length + 1} parses as YAML ${doc.errors.map((e) => e.message).join("; ")}`.trimEnd());
    const object = doc.toJS();
    if (object) docs.push({ file, object, name: `${file}: ${object.kind}/${object.metadata?.name}` });
  }
}

// Where kubernetes-models keeps a kind: core "v1" → v1/Kind, "apps/v1" → apps/v1/Kind.
const modelPath = ({ apiVersion, kind }) => `kubernetes-models/${apiVersion}/${kind}`;
const custom = new Set(["inference.networking.k8s.io/v1/InferencePool"]);

// 1. Schemas.
for (const d of docs) {
  const key = `${d.object.apiVersion}/${d.object.kind}`;
  if (custom.has(key)) continue;
  let Model;
  try {
    Model = (await import(modelPath(d.object)))[d.object.kind];
  } catch {
    check(false, `${d.name}: no Kubernetes schema for ${key}`);
    continue;
  }
  try {
    new Model(d.object).validate();
    check(true, `${d.name}: Kubernetes schema`);
  } catch (e) {
    check(false, `${d.name}: Kubernetes schema: ${e.message}`);
  }
}

// 2. Unknown fields: tsc over typed literals.
const work = join(here, "node_modules", ".strict");
mkdirSync(work, { recursive: true });
const lines = [`import type { IInferencePool } from "../../inferencepool.js";`];
docs.forEach((d, i) => {
  const key = `${d.object.apiVersion}/${d.object.kind}`;
  const type = custom.has(key) ? "IInferencePool" : `I${d.object.kind}`;
  if (!custom.has(key)) lines.push(`import type { ${type} as T${i} } from "${modelPath(d.object)}";`);
  lines.push(`// ${d.name}`, `export const doc${i}: ${custom.has(key) ? type : `T${i}`} = ${JSON.stringify(d.object, null, 1)};`);
});
writeFileSync(join(work, "manifests.ts"), lines.join("\n"));
writeFileSync(join(work, "tsconfig.json"), JSON.stringify({
  compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", skipLibCheck: true },
  files: ["manifests.ts"],
}));
try {
  execFileSync(process.execPath, [join(here, "node_modules", "typescript", "bin", "tsc"), "-p", work], { encoding: "utf8" });
  check(true, `no unknown fields in ${docs.length} objects (tsc --strict over kubernetes-models' types and the InferencePool v1 fields)`);
} catch (e) {
  check(false, `unknown or mistyped fields:\n${e.stdout}`);
}

// 3. InferencePool v1 rules.
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const port = (n) => Number.isInteger(n) && n >= 1 && n <= 65535;
const of = (kind) => docs.filter((d) => d.object.kind === kind);
for (const d of of("InferencePool")) {
  const s = d.object.spec ?? {};
  const labels = Object.entries(s.selector?.matchLabels ?? {});
  check(labels.length >= 1 && labels.length <= 64 && labels.every(([, v]) => v.length <= 63 && labelValue.test(v)),
    `${d.name}: selector.matchLabels has 1-64 valid labels`);
  const ports = (s.targetPorts ?? []).map((p) => p.number);
  check(ports.length >= 1 && ports.length <= 8 && ports.every(port) && new Set(ports).size === ports.length,
    `${d.name}: targetPorts has 1-8 distinct ports`);
  const ref = s.endpointPickerRef ?? {};
  check(typeof ref.name === "string" && ref.name.length >= 1 && ref.name.length <= 253, `${d.name}: endpointPickerRef.name`);
  check((ref.kind ?? "Service") !== "Service" || port(ref.port?.number), `${d.name}: endpointPickerRef of kind Service has a port`);
}

// 4. Cross-references.
const podsOf = (w) => ({ labels: w.object.spec?.template?.metadata?.labels ?? {}, spec: w.object.spec?.template?.spec ?? {}, name: w.name });
const workloads = of("Deployment").map(podsOf);
const selects = (selector, labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const eppConfigs = of("ConfigMap").flatMap((c) => Object.entries(c.object.data ?? {})
  .map(([key, text]) => ({ key, config: parse(text), name: `${c.name} ${key}` }))
  .filter((e) => e.config?.kind === "EndpointPickerConfig"));
for (const e of eppConfigs) {
  const names = new Set((e.config.plugins ?? []).map((p) => p.name ?? p.type));
  const refs = [...(e.config.schedulingProfiles ?? []).flatMap((p) => p.plugins ?? []),
    ...(e.config.dataLayer?.sources ?? []).flatMap((s) => [s, ...(s.extractors ?? [])])].map((r) => r.pluginRef);
  const missing = refs.filter((r) => !names.has(r));
  check(missing.length === 0, `${e.name}: every pluginRef names a plugin${missing.length ? ` (missing: ${missing})` : ""}`);
}
const plugin = (type) => eppConfigs.flatMap((e) => e.config.plugins ?? []).find((p) => p.type === type)?.parameters;

for (const pool of of("InferencePool")) {
  const s = pool.object.spec;
  const members = workloads.filter((w) => selects(s.selector.matchLabels, w.labels));
  check(members.length > 0, `${pool.name}: selects the pods of ${members.map((m) => m.name).join(", ") || "nothing"}`);
  for (const m of members) {
    const ports = (m.spec.containers ?? []).flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
    check(s.targetPorts.every((t) => ports.includes(t.number)), `${pool.name}: targets a port ${m.name} listens on`);
  }
  const ref = s.endpointPickerRef;
  const svc = of("Service").find((x) => x.object.metadata.name === ref.name);
  check(svc && svc.object.spec.ports.some((p) => p.port === ref.port.number), `${pool.name}: endpointPickerRef is Service ${ref.name} port ${ref.port.number}`);
  const epp = svc && workloads.find((w) => selects(svc.object.spec.selector, w.labels));
  const eppArgs = epp?.spec.containers?.[0]?.args ?? [];
  check(epp && eppArgs.includes(`--pool-name=${pool.object.metadata.name}`), `${pool.name}: the picker behind it watches this pool`);
}

for (const svc of of("Service")) {
  const targets = workloads.filter((w) => selects(svc.object.spec.selector ?? {}, w.labels));
  const named = (svc.object.spec.ports ?? []).filter((p) => typeof p.targetPort === "string").map((p) => p.targetPort);
  check(targets.length > 0 && targets.every((w) => named.every((n) => (w.spec.containers ?? []).some((c) => (c.ports ?? []).some((p) => p.name === n)))),
    `${svc.name}: selects ${targets.map((t) => t.name).join(", ") || "nothing"} and its named target ports exist`);
}

const producer = plugin("precise-prefix-cache-producer");
for (const w of workloads) {
  for (const c of (w.spec.containers ?? []).filter((c) => c.command?.[0] === "vllm")) {
    const where = `${w.name} container ${c.name}`;
    const args = c.args ?? [];
    const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    check(w.labels["llm-d.ai/engine-type"] === "vllm", `${where}: labelled llm-d.ai/engine-type: vllm`);
    check(c.command.join(" ") === "vllm serve" && args.length > 0 && !args[0].startsWith("-"), `${where}: vllm serve MODEL`);
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"])
      check(c[probe]?.httpGet?.path === "/health", `${where}: ${probe} on /health`);
    check(flag("metrics-prefix") === "vllm", `${where}: vLLM's metric names (--metrics-prefix=vllm)`);
    const drain = Number(flag("shutdown-timeout") ?? 30) + (c.lifecycle?.preStop?.sleep?.seconds ?? 0);
    check((w.spec.terminationGracePeriodSeconds ?? 30) > drain,
      `${where}: terminationGracePeriodSeconds ${w.spec.terminationGracePeriodSeconds} > preStop + --shutdown-timeout (${drain})`);
    if (producer) {
      check(Number(flag("block-size")) === producer.tokenProcessorConfig?.blockSize, `${where}: --block-size equals the router's blockSize`);
      const kv = JSON.parse(flag("kv-events-config") ?? "{}");
      const socket = producer.kvEventsConfig?.podDiscoveryConfig?.socketPort;
      check(kv.enable_kv_cache_events === true && kv.endpoint === `tcp://*:${socket}` && (c.ports ?? []).some((p) => p.containerPort === socket),
        `${where}: KV events bound on the router's socketPort ${socket}`);
      check(kv.topic?.startsWith(producer.kvEventsConfig?.topicFilter ?? ""), `${where}: KV events topic passes the router's topicFilter`);
    }
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
