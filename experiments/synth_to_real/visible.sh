#!/usr/bin/env bash
# The read_real recipe on the four visible sets (Omniglot Latin, Greek and katakana; scikit-learn's digits).
#   experiments/synth_to_real/visible.sh NAME [override ...]
# env: OMNIGLOT (required: the folder holding Omniglot's zips), SEEDS (default "0 1 2"),
#      SETS (default "latin greek katakana digits"), STORE (default /tmp/synth_to_real), PY (default .venv/bin/python).
# One line per run is appended to $STORE/results.tsv: name, set, seed, eval/accuracy, test/accuracy, fit seconds;
# each run's whole output is in $STORE/logs/. Runs are one at a time, at the default thread count.
set -uo pipefail
cd "$(dirname "$0")/../.."
NAME=$1; shift
SEEDS=${SEEDS:-"0 1 2"}; SETS=${SETS:-"latin greek katakana digits"}
STORE=${STORE:-/tmp/synth_to_real}; PY=${PY:-.venv/bin/python}
OMNIGLOT=${OMNIGLOT:?set OMNIGLOT to the folder holding the Omniglot zips}
mkdir -p "$STORE/logs"
KATAKANA=アイウエオカキクコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヰヱヲン
for seed in $SEEDS; do
  for set in $SETS; do
    case $set in
      latin)    args=(data=latin data.charset=lower eval_data=omniglot "eval_data.root=$OMNIGLOT") ;;
      greek)    args=(data=greek eval_data=omniglot eval_data.alphabet=Greek "eval_data.root=$OMNIGLOT") ;;
      katakana) args=(data=kana "data.charset='$KATAKANA'" eval_data=omniglot "eval_data.alphabet='Japanese_(katakana)'"
                      "eval_data.root=$OMNIGLOT") ;;
      digits)   args=(data=digits_synth eval_data=digits) ;;
      *) echo "unknown set $set" >&2; exit 2 ;;
    esac
    log="$STORE/logs/$NAME-$set-$seed.log"
    "$PY" run.py "${args[@]}" +experiment=read_real seed=$seed "tracking.uri=sqlite:///$STORE/mlflow.db" \
      tracking.experiment=synth_to_real "+study=$NAME" trainer.enable_progress_bar=false tracking.log_model=false \
      "$@" > "$log" 2>&1
    ev=$(grep -ao 'eval/accuracy [0-9.]*' "$log" | awk '{print $2}')
    te=$(grep -ao 'test/accuracy [0-9.]*' "$log" | awk '{print $2}')
    fit=$(grep -ao 'fit [0-9.]*s' "$log" | awk '{print $2}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$set" "$seed" "${ev:-FAIL}" "${te:-}" "${fit:-}" | tee -a "$STORE/results.tsv"
  done
done
