#!/usr/bin/env bash
# Builds and runs jblock's JMH microbenchmarks (outside ./mvnw verify).
#   bench/jmh/run.sh [JMH options...]     e.g. bench/jmh/run.sh -f 1 -wi 2 -i 3 NbdReplies
set -euo pipefail
cd "$(dirname -- "$0")"
[ -f ../../target/jblock.jar ] || { echo "build jblock first: ./mvnw -q -B package -DskipTests" >&2; exit 1; }
../../mvnw -q -B -f pom.xml package
java=
for d in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
  [ -n "$d" ] && [ -x "$d/bin/java" ] && grep -q '^JAVA_VERSION="2[5-9]' "$d/release" 2>/dev/null && { java=$d/bin/java; break; }
done
[ -n "$java" ] || { echo "no JDK 25 found" >&2; exit 1; }
[ $# -gt 0 ] || set -- -f 1 -wi 3 -w 1 -i 5 -r 1
exec "$java" --enable-native-access=ALL-UNNAMED -cp target/benchmarks.jar:../../target/jblock.jar \
  org.openjdk.jmh.Main -jvmArgsAppend --enable-native-access=ALL-UNNAMED "$@"
