#!/bin/sh
# test_table1.sh - lua/experiments/table1.lua end to end, in well under a
# minute: `--quick` runs every row and every architecture of Table 1 for 2
# steps at batch 8 (a pipeline check, not a result), and this checks what it
# wrote: table1.md has every row (with the issue's settings) and every
# column, a verdict and the paper's symbol in every cell, the rules, the
# settings, the command, the date, the machine and the budgets; every SVG
# exists and is an SVG document; every CSV parses (same number of fields on
# every line, numbers where numbers belong); the Lua scorer of the statistic
# agrees with icl.eval's per-position curve; every cell was saved. Then:
# a rerun reuses the saved cells (same numbers, nothing trained),
# --report-only rebuilds the table from them, a run with other settings is
# refused and leaves the outputs alone, --fresh recomputes; Ctrl-C (SIGINT)
# during a long run exits 130 and leaves a table1.md that says which cell was
# interrupted at which step; a bad --only is refused. The full experiment
# (hours) is not run here.
#
#   EXE=./iclplay sh tests/lua/test_table1.sh
#
# Prints one line per test and "N passed, N failed"; exits 1 on failure.
. tests/testlib.sh
test_begin table1
SCRIPT=lua/experiments/table1.lua
t0=$(date +%s)

# The rows: key | title | setting (the issue's), and how many columns they use.
ROWS='linear|Linear regression|d 5, 20 points|3
sparse_linear|Sparse linear regression|d 10, k 3, 20 points|3
relu2nn|2NN regression|d 5, hidden 100, 40 points|3
decision_tree|Decision tree|d 5, depth 3, 40 points|3
ortho_outlier|Orthogonal-outlier regression|d 5, 40 points, p 0.5|3
many_outlier|Many-outlier regression|d 5, 100 points, p 0.9|3
parity_d6|Sparse parity (d 6)|d 6, k 2, 40 points|5
parity_d10|Sparse parity (d 10)|d 10, k 2, 140 points|5
cot_io|Chain-of-thought I/O|d 5, hidden 4, 20 examples|3
vector_mqar|Vector-valued MQAR|d 8, 16 pairs, 4 queries|3'
echo "$ROWS" >"$tmp/rows"
QUICK_STEPS=2
QUICK_EVERY=2

# ---- static: no stray globals ------------------------------------------------

# A misspelt or undefined name in Lua is a nil global that fails only when
# reached (a tick label of 1,000 once crashed every full run). luac's listing
# shows every global access; only the standard library and `arg` may appear.
LUAC=$(command -v luac5.4 || command -v luac)
if [ -n "$LUAC" ]; then
    STD='arg|assert|error|io|ipairs|math|os|pairs|pcall|print|require|string|table|tonumber|tostring|type|utf8'
    STD="$STD|select|next|setmetatable|getmetatable|rawget|rawset|rawequal|rawlen|dofile|load"
    globals_ok() { # prints each stray global; fails when there is one
        for f in "$SCRIPT" lua/icl/table1_*.lua; do
            "$LUAC" -p -l "$f" | grep -oE '(GET|SET)TABUP.*_ENV "[A-Za-z_0-9]+"' |
                sed -E "s|.*_ENV \"([^\"]+)\"|$f: \\1|"
        done | grep -vE ": ($STD)\$"
        [ $? -ne 0 ]
    }
    check "table1.lua and lua/icl/table1_*.lua use no global beyond the standard library (luac -l)" globals_ok
fi

# ---- the JSON of the saved cells -------------------------------------------

# Round trip: NaN (written as null), escapes, integers, nesting; equal
# tables give equal text (settings are compared by their encoding).
cat >"$tmp/json.lua" <<'EOF'
local J = require("icl.table1_json")
local v = { a = { 1, 2.5, -3e-7, 0 / 0 }, b = "q\"uo\\te\n\tx", c = { { x = true, y = false }, {} }, d = 12345678901,
            e = 0.1, f = 1e300 }
local w = assert(J.decode(J.encode(v, true)))
assert(J.encode(w) == J.encode(v), "the round trip changed the text:\n" .. J.encode(w) .. "\n" .. J.encode(v))
assert(w.a[4] ~= w.a[4] and w.a[2] == 2.5 and w.a[3] == -3e-7 and w.b == v.b and w.c[1].x == true and w.e == 0.1)
assert(math.type(w.d) == "integer" and w.d == 12345678901)
local bad, msg = J.decode('{"a": [1, 2,}')
assert(bad == nil and msg:find("character"), "a syntax error must be reported")
print("json ok")
EOF
check "table1_json: encode/decode round trip (NaN as null, escapes, integers); syntax errors reported" \
    sh -c "'$EXE' run '$tmp/json.lua' | grep -qx 'json ok'"

# ---- the quick run ---------------------------------------------------------

out="$tmp/quick"
start=$(date +%s)
"$EXE" run "$SCRIPT" --quick --out "$out" >"$tmp/quick.log" 2>&1
rc=$?
secs=$(($(date +%s) - start))
if [ $rc -eq 0 ] && grep -q "table1: complete" "$tmp/quick.log"; then
    ok "--quick runs every row to completion (exit 0, ${secs} s)"
else
    bad "--quick runs every row to completion (exit $rc)" "$(tail -20 "$tmp/quick.log")"
fi
md="$out/table1.md"
check "table1.md exists and is not empty" test -s "$md"

check "the table has the columns task, setting, statistic and the five architectures" \
    grep -qxF "| task | setting | statistic | Transformer | Mamba | MambaFormer | S4-Mamba | Standard Hybrid |" "$md"

# Every row: one table line with 8 cells, a number, an interval, a verdict and
# the paper's symbol in each used column, "—" in the others.
row_ok() { # row_ok TITLE SETTING NCOLS
    line=$(grep -F "| $1 | $2" "$md" | head -1)
    [ -n "$line" ] || { echo "no table line for '$1 | $2'"; return 1; }
    printf '%s\n' "$line" | awk -F'|' -v n="$3" '
        NF != 10 { print "expected 8 cells, got " NF - 2; exit 1 }
        {
            used = 0
            for (i = 5; i <= 9; i++) {
                c = $i
                if (c ~ /^ *— *$/) continue
                used++
                if (c !~ /[0-9]\.[0-9]+(e-[0-9]+)? \[[-0-9.e]+, [-0-9.e]+\] (✓|▲|✗) · paper (✓|▲|✗|\?|✗\?)/ ||
                    c !~ /<br>[0-9,]+ steps · /) {
                    print "cell " i - 4 " malformed: " c; exit 1
                }
            }
            if (used != n) { print "expected " n " cells with results, got " used; exit 1 }
        }'
}
while IFS='|' read -r key title setting ncols; do
    check "row $key: '$title' ($setting), $ncols cells with value, interval, verdict and paper symbol" \
        row_ok "$title" "$setting" "$ncols"
done <"$tmp/rows"

rules_ok() {
    grep -q '^- \*\*✗\*\* at the trivial level' "$md" && grep -q '^- \*\*✓\*\* not ✗' "$md" &&
        grep -q '^- \*\*▲\*\* neither' "$md"
}
check "the verdict rules are written out (✓, ▲ and ✗)" rules_ok
check "it says which statistic it reports" grep -q '^\*\*Statistic.\*\* ' "$md"
check "it says it is a --quick pipeline check, not a result" grep -q 'it is not a result' "$md"
settings_ok() {
    grep -q 'd_model 64, n_layer 4' "$md" && grep -q 'batch 64' "$md" && grep -q 'lr 1e-3' "$md" &&
        grep -q 'clipping 10' "$md"
}
check "settings: d_model 64, n_layer 4, batch 64, lr 1e-3, clipping 10" settings_ok
run_ok() {
    grep -qF -- "- Command: \`iclplay run $SCRIPT --quick --out $out\`" "$md" &&
        grep -q '^- Date: [0-9-]* [0-9:]* UTC' "$md" && grep -q '^- Machine: `Linux' "$md" && grep -q ' cores (' "$md"
}
check "the command line, the date and the machine are recorded" run_ok
check "no cell failed" sh -c "! grep -q 'failed' '$md'"
budgets_ok() {
    while IFS='|' read -r key title setting ncols; do
        re="^\| $key \| $QUICK_STEPS \| $QUICK_EVERY \| [A-Z].* [0-9]+\.[0-9].* \| [0-9.]+ (s|min) \|$"
        grep -qE "$re" "$md" || {
            echo "no budget line for $key"
            return 1
        }
    done <"$tmp/rows"
}
check "every row has its budget ($QUICK_STEPS steps with --quick), curve interval and speeds" budgets_ok

svg_ok() {
    n=0
    while IFS='|' read -r key title setting ncols; do
        for kind in steps examples; do
            f="$out/table1/${key}_$kind.svg"
            [ -s "$f" ] || { echo "missing $f"; return 1; }
            head -1 "$f" | grep -qE '^(<svg|<\?xml)' || { echo "$f does not start with <svg or <?xml"; return 1; }
            tail -1 "$f" | grep -qx '</svg>' || { echo "$f does not end with </svg>"; return 1; }
            grep -q '<polyline' "$f" || { echo "$f has no line"; return 1; }
            grep -qF "table1/${key}_$kind.svg" "$md" || { echo "table1.md does not show $f"; return 1; }
            n=$((n + 1))
        done
    done <"$tmp/rows"
    [ $n -eq 20 ]
}
check "two SVG charts per row, linked from table1.md" svg_ok
if command -v xmllint >/dev/null 2>&1; then
    check "the SVGs are well-formed XML (xmllint)" sh -c "xmllint --noout '$out'/table1/*.svg"
fi

# CSV: a header, then lines with as many fields; the named numeric columns
# are numbers or empty.
csv_ok() { # csv_ok FILE MIN_LINES NUMERIC_COLUMNS(comma list of names)
    [ -s "$1" ] || { echo "missing $1"; return 1; }
    awk -F',' -v min="$2" -v num="$3" '
        NR == 1 { n = NF; split(num, want, ","); for (i = 1; i <= NF; i++) col[$i] = i; next }
        NF != n { print FILENAME ":" NR ": " NF " fields, header has " n; bad = 1; exit }
        {
            for (k in want) {
                if (!(want[k] in col)) { print FILENAME ": no column " want[k]; bad = 1; exit }
                v = $(col[want[k]])
                if (v != "" && v !~ /^-?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?$/) {
                    print FILENAME ":" NR ": " want[k] " = \"" v "\" is not a number"; bad = 1; exit
                }
            }
            lines++
        }
        END {
            if (!bad && lines < min) { print FILENAME ": " lines " lines, expected at least " min; exit 1 }
            exit bad
        }' "$1"
}
csvs_ok() {
    while IFS='|' read -r key title setting ncols; do
        csv_ok "$out/table1/${key}_steps.csv" $((ncols * 2)) "seed,step,metric,train_loss,wall_s" || return 1
        csv_ok "$out/table1/${key}_examples.csv" $((ncols * 4)) "seed,position,mean,lo,hi,count" || return 1
    done <"$tmp/rows"
    csv_ok "$out/table1/cells.csv" 34 "seeds,steps,wall_s,statistic,lo,hi,progress" || return 1
    csv_ok "$out/table1/runs.csv" 34 \
        "seed,steps,budget,wall_s,train_s,train_steps_per_s,final_loss,statistic,lo,hi,curve_check"
}
check "every CSV parses (per-step metrics, per-position curves, cells, runs)" csvs_ok
check "cells.csv: 34 cells, each with a verdict word and $QUICK_STEPS steps" awk -F',' -v s=$QUICK_STEPS '
    NR > 1 { n++; if ($10 !~ /^(check|triangle|cross)$/ || $4 != s) { print "line " NR ": " $0; exit 1 } }
    END { if (n != 34) { print n " cells"; exit 1 } }' "$out/table1/cells.csv"
# the statistic is recomputed in Lua from a forward pass on the same prompts
# as icl.eval; both must agree (relative 1e-4)
check "the Lua scorer agrees with icl.eval's curve on every cell" awk -F',' '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
        s = $(col["statistic"]); c = $(col["curve_check"]); d = s - c; if (d < 0) d = -d
        m = c < 0 ? -c : c; if (m < 1) m = 1
        if (s == "" || c == "" || d > 1e-4 * m) { print "line " NR ": statistic " s " curve " c; exit 1 }
    }' "$out/table1/runs.csv"
check "every learning curve has points at steps 0 and $QUICK_STEPS" awk -F',' -v s=$QUICK_STEPS '
    FNR == 1 { next }
    { k = FILENAME SUBSEP $1 SUBSEP $2; if (!(k in first)) first[k] = $3; last[k] = $3; n[k]++ }
    END { for (k in first) if (first[k] != 0 || last[k] != s || n[k] != 2) {
              print k ": " n[k] " points, " first[k] " .. " last[k]; exit 1 } }' "$out"/table1/*_steps.csv
cells_saved() {
    n=$(ls "$out"/table1/cells/*_s1.json 2>/dev/null | wc -l)
    [ "$n" -eq 34 ] || { echo "$n saved cells, expected 34"; return 1; }
    grep -q '"sums": \[' "$out/table1/cells/linear_mamba_s1.json" &&
        grep -q "\"budget\": $QUICK_STEPS," "$out/table1/cells/linear_mamba_s1.json"
}
check "every cell is saved (table1/cells/<row>_<arch>_s1.json, with its settings and per-prompt scores)" cells_saved

# ---- resuming --------------------------------------------------------------

cp "$out/table1/cells.csv" "$tmp/cells.first"
"$EXE" run "$SCRIPT" --quick --out "$out" >"$tmp/resume.log" 2>&1
rc=$?
resumed_ok() {
    [ $rc -eq 0 ] || { echo "exit $rc"; return 1; }
    [ "$(grep -c ": budget $QUICK_STEPS steps, 0 of [35] cells to run\$" "$tmp/resume.log")" -eq 10 ] || {
        echo "expected 10 rows with nothing to run:"; grep '^==' "$tmp/resume.log"; return 1; }
    ! grep -q 'training to' "$tmp/resume.log" || { echo "it trained"; return 1; }
    cmp "$out/table1/cells.csv" "$tmp/cells.first" || return 1
    [ "$(grep -c ',saved$' "$out/table1/runs.csv")" -eq 34 ] || {
        echo "runs.csv does not say saved 34 times"
        return 1
    }
}
check "a rerun reuses all 34 saved cells: nothing trained, the same cells.csv" resumed_ok

rm -f "$md" "$out/table1/cells.csv"
"$EXE" run "$SCRIPT" --quick --report-only --out "$out" >"$tmp/report.log" 2>&1
rc=$?
report_ok() {
    [ $rc -eq 0 ] || { echo "exit $rc"; cat "$tmp/report.log"; return 1; }
    grep -q 'Status: \*\*rebuilt from saved cells: 34 of 34 cells' "$md" || { grep Status "$md"; return 1; }
    cmp "$out/table1/cells.csv" "$tmp/cells.first"
}
check "--report-only rebuilds table1.md and the same cells.csv from the saved cells alone" report_ok

cp "$md" "$tmp/md.before"
"$EXE" run "$SCRIPT" --quick --steps 6 --only linear --out "$out" >"$tmp/mismatch.log" 2>&1
rc=$?
mismatch_ok() {
    [ $rc -eq 2 ] || { echo "exit $rc"; return 1; }
    grep -q "linear_transformer_s1: other settings (budget: 6 here, $QUICK_STEPS in the file" "$tmp/mismatch.log" &&
        grep -q -- '--fresh' "$tmp/mismatch.log" && ! grep -q 'training to' "$tmp/mismatch.log" &&
        cmp "$md" "$tmp/md.before"
}
check "cells saved with other settings (a budget of $QUICK_STEPS, not 6) are refused before anything runs" mismatch_ok

"$EXE" run "$SCRIPT" --quick --steps 6 --only vector_mqar --fresh --out "$out" >"$tmp/fresh.log" 2>&1
rc=$?
fresh_ok() {
    [ $rc -eq 0 ] || { echo "exit $rc"; tail -5 "$tmp/fresh.log"; return 1; }
    grep -q ': budget 6 steps, 3 of 3 cells to run$' "$tmp/fresh.log" &&
        grep -q '"budget": 6' "$out/table1/cells/vector_mqar_mamba_s1.json" &&
        grep -q "\"budget\": $QUICK_STEPS," "$out/table1/cells/linear_mamba_s1.json"
}
check "--fresh discards the selected row's cells and recomputes them (other rows' cells stay)" fresh_ok

# ---- Ctrl-C ----------------------------------------------------------------

# A long run (a budget of 100000 steps) interrupted once training is under
# way must exit 130 and still write table1.md, saying where it stopped.
iout="$tmp/int"
"$EXE" run "$SCRIPT" --quick --only linear --steps 100000 --out "$iout" >"$tmp/int.log" 2>&1 &
pid=$!
i=0
while ! grep -q "seed 1  step" "$tmp/int.log" && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill -INT $pid 2>/dev/null
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then kill -KILL $pid; fi
wait $pid
rc=$?
if [ $rc -eq 130 ] && grep -q 'Status: \*\*interrupted by Ctrl-C' "$iout/table1.md" 2>/dev/null &&
    grep -qE '^linear,transformer,1,interrupted,[0-9]+,100000,' "$iout/table1/runs.csv" &&
    grep -qE 'interrupted at step [0-9,]+ · paper' "$iout/table1.md" && [ -s "$iout/table1/linear_steps.svg" ] &&
    [ ! -e "$iout/table1/cells/linear_transformer_s1.json" ]; then
    ok "Ctrl-C stops the run (exit 130), the partial table says where, the unfinished cell is not saved"
else
    bad "Ctrl-C stops the run (exit 130), the partial table says where, the unfinished cell is not saved (exit $rc)" \
        "$(tail -5 "$tmp/int.log"
            grep -m1 Status "$iout/table1.md" 2>/dev/null
            cat "$iout/table1/runs.csv" 2>/dev/null)"
fi

# ---- arguments -------------------------------------------------------------

"$EXE" run "$SCRIPT" --only nosuch --out "$tmp/none" >"$tmp/arg.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "no row 'nosuch' (rows: linear, sparse_linear" "$tmp/arg.log" && [ ! -e "$tmp/none" ]; then
    ok "an unknown --only row is refused before anything runs"
else
    bad "an unknown --only row is refused before anything runs (exit $rc)" "$(cat "$tmp/arg.log")"
fi

echo "# test_table1.sh took $(($(date +%s) - t0)) s"
test_end
