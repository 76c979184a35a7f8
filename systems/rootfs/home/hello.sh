#!/bin/sh
# A shell script for busybox sh: `sh /home/hello.sh NAME`.
echo "hello, ${1:-KaaL}: busybox sh on seL4"
echo "$(ls /bin | wc -l) names in /bin"
