// ONNX Runtime (npm onnxruntime-node, CPU) latency of ONNX models at batch 1,
// for bench/engine_bench.sh: all graph optimizations, sequential execution,
// THREADS intra-op threads. Input shapes come from SHAPES (a JSON file:
// {"name": [1, 3, 224, 224], ...}, name = the file's stem).
// Usage: node ort_bench.js THREADS SECONDS SHAPES model.onnx ...
// Prints one line per model: name threads median_ms runs
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');

async function main() {
  const [threads, seconds, shapesFile, ...files] = process.argv.slice(2);
  const shapes = JSON.parse(fs.readFileSync(shapesFile, 'utf8'));
  for (const file of files) {
    const name = path.basename(file, '.onnx');
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all'});
    const shape = shapes[name];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new ort.Tensor('float32', Float32Array.from({length: n}, (_, i) => Math.sin(i)), shape);
    const feeds = {[session.inputNames[0]]: x};
    for (let i = 0; i < 3; ++i) await session.run(feeds);
    const ms = [];
    const end = Date.now() + Number(seconds) * 1000;
    while (Date.now() < end || ms.length < 5) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    console.log(`${name} ${threads} ${ms[ms.length >> 1].toFixed(2)} ${ms.length}`);
  }
}

main().catch((e) => { console.error(String(e)); process.exit(1); });
