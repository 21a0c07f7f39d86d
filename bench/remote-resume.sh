#!/bin/bash
# Resume of a 1 GiB push and fetch over loopback: the first attempt is killed (kill -9 of
# the whole process group) once ~400 MiB are on the other side; the transfer log of the
# server counts what each attempt moved. Needs `cargo build --release --bins` first.
#   bash bench/remote-resume.sh [SCRATCH_DIR]
set -u
BIN=$(cd "$(dirname "$0")/.." && pwd)/target/release
W=${1:-/tmp/dits-resume}; rm -rf "$W"; mkdir -p "$W/home"; cd "$W"
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 PATH=$BIN:$PATH GIT_TERMINAL_PROMPT=0 GIT_DITS_TRUST_NEW_SERVER=1
git config --global user.name t; git config --global user.email t@t; git config --global init.defaultBranch main; git dits install --global -q
TOKEN=$(git-dits serve --root srv token add --repo 'team/*' --write 2>/dev/null)
setsid git-dits serve --root srv --listen 127.0.0.1:0 > serve.out 2> serve.err < /dev/null &
sleep 0.5; ADDR=$(head -1 serve.out | sed 's/listening //')
git config --global credential.helper "store --file=$W/creds"; echo "dits://u:$TOKEN@$ADDR" > creds
git init -q a; cd a; git dits track -q '*.bin'; head -c 1073741824 /dev/urandom > big.bin; git add .; git commit -qm one; git remote add origin dits://$ADDR/team/film; sync
put() { awk '/op=put/ {split($NF,a,"="); s+=a[2]} END {print s+0}' $W/srv/server/transfer.log; }
setsid git push -q origin main 2>/dev/null & PID=$!
while [ "$(put)" -lt 419430400 ]; do sleep 0.02; done
kill -9 -- -$PID 2>/dev/null; wait $PID 2>/dev/null
FIRST=$(put); echo "first attempt: server stored $FIRST bytes before the kill"
/usr/bin/time -f "second push %e s" git push -q origin main 2>&1 | grep -v trusting
TOTAL=$(put); echo "second attempt sent $((TOTAL-FIRST)) bytes; file 1073741824; re-sent beyond the remainder: $((TOTAL-1073741824)) bytes = $(( (TOTAL-1073741824) * 100 / 16777216 ))% of one 16 MiB batch"
# fetch: skip-smudge clone, fetch killed after ~400 MiB, then fetch again
cd $W; GIT_DITS_SKIP_SMUDGE=1 git clone -q dits://$ADDR/team/film c 2>/dev/null; cd c
get() { awk '/op=get/ {split($NF,a,"="); s+=a[2]} END {print s+0}' $W/srv/server/transfer.log; }
setsid git dits fetch -q & PID=$!
while [ "$(get)" -lt 419430400 ]; do sleep 0.02; done
kill -9 -- -$PID 2>/dev/null; wait $PID 2>/dev/null
G1=$(get); echo "fetch first attempt: server sent $G1 bytes"
git dits fetch -q; G2=$(get); echo "second fetch: $((G2-G1)) bytes; re-sent beyond the file: $((G2-1073741824)) bytes = $(( (G2-1073741824) * 100 / 16777216 ))% of one batch"
git dits pull -q; cmp big.bin ../a/big.bin && echo "content verified"
pkill -f "serve --root srv"
