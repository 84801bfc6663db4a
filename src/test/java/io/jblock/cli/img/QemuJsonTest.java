package io.jblock.cli.img;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class QemuJsonTest {
    @Test
    void membersComeInQdictBucketOrderNotInsertionOrder() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", "a.img");
        m.put("format", "raw");
        m.put("dirty-flag", false);
        m.put("actual-size", 4096L);
        m.put("virtual-size", 1048576L);
        assertThat(QemuJson.pretty(m)).isEqualTo("""
                {
                    "virtual-size": 1048576,
                    "filename": "a.img",
                    "format": "raw",
                    "actual-size": 4096,
                    "dirty-flag": false
                }""");
    }

    @Test
    void bucketsAreTheTdbHashModulo512() {
        assertThat(QemuJson.bucket("virtual-size")).isEqualTo(309);
        assertThat(QemuJson.bucket("filename")).isEqualTo(313);
        assertThat(QemuJson.bucket("driver")).isEqualTo(239);
        assertThat(QemuJson.bucket("offset")).isEqualTo(180);
    }

    @Test
    void nestedArraysAndEmptyContainersAreIndentedAsQemuDoes() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("format", "raw");
        assertThat(QemuJson.pretty(List.of(inner, Map.of(), List.of()))).isEqualTo("""
                [
                    {
                        "format": "raw"
                    },
                    {
                    },
                    [
                    ]
                ]""");
    }

    @Test
    void stringsEscapeQuotesBackslashesControlsAndNonAsciiInUpperCaseHex() {
        assertThat(QemuJson.pretty(List.of("a\"b\\c/d\te\u007f\u00e9\ud83d\ude00\u0001\n"))).isEqualTo(
                "[\n    \"a\\\"b\\\\c/d\\te\\u007F\\u00E9\\uD83D\\uDE00\\u0001\\n\"\n]");
    }
}
