# Shared by the bench scripts (sourced): one timed run, and the median of a column of numbers.

# measure CMD... -> prints "wall_seconds max_rss_kib" for one run of CMD, its output discarded.
# Needs $work (the script's scratch directory).
measure() {
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
        echo "failed: $*" >&2
        cat "$work/stderr.txt" >&2
        exit 1
    }
    cat "$work/time.txt"
}

# median: the median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
