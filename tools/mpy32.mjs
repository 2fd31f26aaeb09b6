// Run a Python file on the 32-bit MicroPython (the WebAssembly port from npm), with the
// directories given mounted in its file system, and print what it prints.
//
//   node tools/mpy32.mjs [--heap BYTES] [--mount HOSTDIR:/path ...] SCRIPT.py [ARG ...]
//
// The package comes from `make venv` (npm install into .venv/npm; ROAM_MPY32 names another
// node_modules directory). Its heap, objects and pointers are 32-bit, as on an ESP32, so what
// a script measures with gc.mem_alloc() is what a board would hold (docs/LAB.md "Heap").
// Each `--run` chunk of the script is run by one runPython call; the port keeps garbage alive
// until the call returns, so a script that needs a clean collection splits itself with lines
// `# --run--`.
import fs from "fs";
import path from "path";
import { createRequire } from "module";
import { pathToFileURL } from "url";

const here = path.dirname(new URL(import.meta.url).pathname);
const modules = process.env.ROAM_MPY32 || path.join(here, "..", ".venv", "npm", "node_modules");
const pkg = path.join(modules, "@micropython", "micropython-webassembly-pyscript", "micropython.mjs");
if (!fs.existsSync(pkg)) {
  console.error("mpy32: no 32-bit MicroPython at " + pkg + " (run make venv)");
  process.exit(3);
}
const { loadMicroPython } = await import(pathToFileURL(pkg).href);

let heap = 1024 * 1024;
const mounts = [];
const args = process.argv.slice(2);
while (args.length && args[0].startsWith("--")) {
  const opt = args.shift();
  if (opt === "--heap") heap = parseInt(args.shift(), 10);
  else if (opt === "--mount") mounts.push(args.shift());
  else { console.error("mpy32: unknown option " + opt); process.exit(2); }
}
if (!args.length) { console.error("usage: mpy32.mjs [--heap N] [--mount DIR:/p] SCRIPT.py [ARG ...]"); process.exit(2); }
const script = args.shift();

let failed = false;
const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (line) => console.log(line),
  stderr: (line) => { console.error(line); },
});

function copy(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name);
    const d = dst + "/" + name;
    if (fs.statSync(s).isDirectory()) copy(s, d);
    else mp.FS.writeFile(d, fs.readFileSync(s));
  }
}
for (const m of mounts) {
  const i = m.lastIndexOf(":");
  copy(m.slice(0, i), m.slice(i + 1));
}
// this port has no sys.argv: scripts read ARGV
mp.runPython("ARGV = " + JSON.stringify([script, ...args]));
const chunks = fs.readFileSync(script, "utf8").split(/^# ?--run--$/m);
for (const chunk of chunks) {
  try {
    mp.runPython(chunk);
  } catch (e) {
    if (e.type !== "SystemExit") {
      console.error(String(e.message || e));
      failed = true;
    }
    break; // SystemExit: the script is done
  }
}
process.exit(failed ? 1 : 0);
