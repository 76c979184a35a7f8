# busybox_script: typed on KaaL's console, run there by busybox sh, and run
# by the host's busybox; the two outputs must be equal line for line.
# Deterministic on purpose: no dates, pids or inode numbers. `ls -l` is cut
# to mode, links, size and name: owners, dates and a folder's size (shown
# as -) differ between the machines. Only $T is written: /tmp in the guest,
# a private folder on the host (KAAL_TMP), whose path the harness maps back
# to /tmp. No tabs: the guest's line editor would complete them.
T=${KAAL_TMP:-/tmp}
W=$T/kaal-script
umask 022
rm -rf $W
mkdir -p $W/sub
cd $W
printf '== %s ==\n' begin
pwd
cat > fruit.txt <<'EOF'
pear 3
apple 12
fig 7
banana 5
apple 2
EOF
echo "a note" > note.txt
printf 'one\ntwo\nthree\n' > sub/list
echo appended >> note.txt
ls -l | awk '$1 != "total" { print $1, $2, ($1 ~ /^d/ ? "-" : $5), $NF }'
ls -l sub | awk '$1 != "total" { print $1, $2, $5, $NF }'
cat note.txt
wc -l < fruit.txt
wc -w fruit.txt
wc -c sub/list
grep apple fruit.txt
grep -c a fruit.txt
grep -v a fruit.txt
grep -q cherry fruit.txt
echo "grep status $?"
sort fruit.txt
sort -k2 -n fruit.txt | head -n 2
cut -d' ' -f1 fruit.txt | sort | uniq -c | sort -rn | head -1
sed 's/apple/APPLE/; /fig/d' fruit.txt
sed -n '2p' sub/list
cut -d' ' -f1 fruit.txt | sort -u | tr '\n' ,
echo
head -c 5 fruit.txt
echo
tail -n 1 fruit.txt
ls missing 2>/dev/null
echo "ls status $?"
false
echo "false status $?"
true
echo "true status $?"
n=0
for f in fruit.txt note.txt sub/list; do
    n=$((n + 1))
    echo "$n: $f has $(wc -l < $f) lines"
done
for w in $(cut -d' ' -f1 fruit.txt | sort); do printf '%s.' "$w"; done
echo
count=$(grep -c . fruit.txt)
echo "count=$count upper=$(echo abc | tr a-z A-Z)"
cd sub
pwd
cd ..
pwd
cd /
pwd
cd $W/sub && cat list | sort -r | head -n 2 > ../top.txt
cat ../top.txt
while read name num; do
    [ "$num" -gt 4 ] && echo "big $name"
done < $W/fruit.txt
case "$(cat $W/top.txt | head -1)" in
    two) echo "case two" ;;
    *) echo "case other" ;;
esac
cat <<EOF
here-doc in $(basename $W): $((6 * 7))
  indented \$HOME kept
EOF
mv $W/top.txt $W/moved.txt && cat $W/moved.txt
ln -s moved.txt $W/link && readlink $W/link && cat $W/link
ln $W/moved.txt $W/hard && wc -c < $W/hard
printf 'abcdef' > $W/cut.txt && truncate -s 3 $W/cut.txt && cat $W/cut.txt && echo
sed -i 's/two/TWO/' $W/moved.txt && cat $W/moved.txt
cd $W
chmod 640 moved.txt && stat -c '%a %A' moved.txt
chmod u+x,o+r moved.txt && stat -c %a moved.txt
chmod 700 sub && stat -c %A sub
chmod 600 nope; echo "chmod status $?"
touch -d @1577934245 moved.txt && stat -c '%X %Y' moved.txt
touch -m -d @86400 hard && stat -c %Y hard
cp -p moved.txt copy && stat -c '%a %X %Y' copy
truncate -s 10 cut.txt && wc -c < cut.txt
rm -r $W
ls $W 2>/dev/null || echo removed
printf '== %s ==\n' end
