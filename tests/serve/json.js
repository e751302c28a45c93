// json.js EXPR: evaluate EXPR with `j` = the JSON on stdin; print the result
// (strings raw, everything else as JSON). Test helper for the shell scripts.
const j = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const v = eval(process.argv[2]);
process.stdout.write(typeof v === 'string' ? v : JSON.stringify(v));
