// send.js — sends traces, metrics and logs to an OTLP endpoint with the
// official OpenTelemetry JS SDK exporters, and writes the content lines the
// mock upstream (build/spillway-mockup, /received/<signal>) must end up with.
//
//   node send.js --endpoint 127.0.0.1:PORT --compression none|gzip
//                [--protocol grpc|http/protobuf|http/json]
//                --out DIR --tag TAG [--spans N] [--logs N] [--ca CERT.pem]
//
// --protocol picks the exporter packages: grpc (the default,
// exporter-*-otlp-grpc), http/protobuf (exporter-*-otlp-proto, POST
// /v1/<signal> with application/x-protobuf) or http/json
// (exporter-*-otlp-http, application/json). With --ca the gRPC exporters
// connect over TLS (https://, the server certificate checked against
// CERT.pem).
// Writes DIR/traces.lines, DIR/metrics.lines and DIR/logs.lines (one line
// per item, the mock's format: docs/mockup.md) and exits 0 only when every
// export was answered with success. Every name carries TAG so that runs do
// not mix. Exits non-zero on any export error.
'use strict';

const fs = require('fs');
const path = require('path');
const { diag, DiagConsoleLogger, DiagLogLevel } = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { ExportResultCode } = require('@opentelemetry/core');

// The exporter package suffix of each protocol: exporter-<signal>-otlp-<kind>.
const KIND = { grpc: 'grpc', 'http/protobuf': 'proto', 'http/json': 'http' };
function exporterClass(protocol, signal) {
  const pkg = { traces: 'trace', metrics: 'metrics', logs: 'logs' }[signal];
  const mod = require(`@opentelemetry/exporter-${pkg}-otlp-${KIND[protocol]}`);
  return { traces: mod.OTLPTraceExporter, metrics: mod.OTLPMetricExporter,
    logs: mod.OTLPLogExporter }[signal];
}
function newExporter(a, signal) {
  const Cls = exporterClass(a.protocol, signal);
  return new Cls(exporterOpts(a, signal));
}
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

function args() {
  const a = { compression: 'none', protocol: 'grpc', spans: 25, logs: 20 };
  const v = process.argv.slice(2);
  for (let i = 0; i + 1 < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  if (!a.endpoint || !a.out || !a.tag || !KIND[a.protocol]) {
    console.error('usage: node send.js --endpoint HOST:PORT --out DIR --tag TAG ' +
      '[--compression none|gzip] [--protocol grpc|http/protobuf|http/json] [--spans N] [--logs N]');
    process.exit(2);
  }
  a.spans = Number(a.spans);
  a.logs = Number(a.logs);
  return a;
}

const results = { ok: 0, failed: 0, errors: [] };

// Wraps an exporter's export() to record every result.
function track(exp) {
  const orig = exp.export.bind(exp);
  exp.export = (items, cb) => orig(items, (r) => {
    if (r.code === ExportResultCode.SUCCESS) results.ok++;
    else { results.failed++; results.errors.push(String(r.error)); }
    cb(r);
  });
  return exp;
}

function exporterOpts(a, signal) {
  const base = (a.ca ? 'https://' : 'http://') + a.endpoint;
  const o = { url: a.protocol === 'grpc' ? base : `${base}/v1/${signal}`, timeoutMillis: 10000 };
  if (a.ca) {
    const grpc = require('@grpc/grpc-js');
    o.credentials = grpc.credentials.createSsl(fs.readFileSync(a.ca));
  }
  if (a.compression === 'gzip') o.compression = 'gzip';
  return o;
}

// The mock writes doubles in the shortest form that reads back: integers
// without a fraction.
function num(x) { return String(x); }

async function sendTraces(a, resource, lines) {
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(track(newExporter(a, 'traces')),
      { maxExportBatchSize: 10, scheduledDelayMillis: 50 })],
  });
  const tracer = provider.getTracer('spillway-sdk-test');
  for (let i = 0; i < a.spans; i++) {
    const name = `${a.tag}-span-${i}`;
    const span = tracer.startSpan(name, { attributes: { 'test.index': i } });
    const ctx = span.spanContext();
    span.end();
    lines.push(`${ctx.traceId} ${ctx.spanId} ${name}`);
  }
  await provider.forceFlush();
  await provider.shutdown();
}

async function sendMetrics(a, resource, lines) {
  const reader = new PeriodicExportingMetricReader({
    exporter: track(newExporter(a, 'metrics')),
    exportIntervalMillis: 3600000,
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter('spillway-sdk-test');
  const counter = meter.createCounter(`${a.tag}.requests`);
  counter.add(3, { route: 'a' });
  counter.add(4, { route: 'b' });
  counter.add(5, { route: 'a' });
  const hist = meter.createHistogram(`${a.tag}.latency`);
  hist.record(2.5, { route: 'a' });
  hist.record(7.5, { route: 'a' });
  await provider.shutdown(); // one final collection and export (cumulative)
  lines.push(`${a.tag}.requests sum route=a ${num(8)}`);
  lines.push(`${a.tag}.requests sum route=b ${num(4)}`);
  lines.push(`${a.tag}.latency histogram route=a count=2 sum=10`);
}

async function sendLogs(a, resource, lines) {
  const provider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor(track(newExporter(a, 'logs')),
      { maxExportBatchSize: 8, scheduledDelayMillis: 50 })],
  });
  const logger = provider.getLogger('spillway-sdk-test');
  for (let i = 0; i < a.logs; i++) {
    const body = `${a.tag} log record ${i}`;
    logger.emit({ severityNumber: 9, severityText: 'INFO', body });
    lines.push(`- 9 ${body}`);
  }
  await provider.forceFlush();
  await provider.shutdown();
}

async function main() {
  const a = args();
  diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
  const resource = resourceFromAttributes({ 'service.name': `sdk-js-${a.tag}` });
  const out = { traces: [], metrics: [], logs: [] };
  await sendTraces(a, resource, out.traces);
  await sendMetrics(a, resource, out.metrics);
  await sendLogs(a, resource, out.logs);
  for (const sig of Object.keys(out))
    fs.writeFileSync(path.join(a.out, `${sig}.lines`), out[sig].map((l) => l + '\n').join(''));
  console.log(`exports ok=${results.ok} failed=${results.failed}`);
  if (results.failed > 0 || results.ok === 0) {
    console.error('export errors: ' + results.errors.join('; '));
    process.exit(1);
  }
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
