package io.jblock.cli;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class QemuTextTest {
    @Test
    void sizesReadAsQemuPrintsThem() {
        assertThat(QemuText.sizeToStr(0)).isEqualTo("0 B");
        assertThat(QemuText.sizeToStr(512)).isEqualTo("512 B");
        assertThat(QemuText.sizeToStr(1000)).isEqualTo("0.977 KiB");
        assertThat(QemuText.sizeToStr(1024)).isEqualTo("1 KiB");
        assertThat(QemuText.sizeToStr(1536)).isEqualTo("1.5 KiB");
        assertThat(QemuText.sizeToStr(1 << 20)).isEqualTo("1 MiB");
        assertThat(QemuText.sizeToStr(64L << 30)).isEqualTo("64 GiB");
        assertThat(QemuText.sizeToStr(1000L << 30)).isEqualTo("0.977 TiB");
    }

    @Test
    void formatGFollowsC() {
        assertThat(QemuText.formatG(999.6, 3)).isEqualTo("1e+03");
        assertThat(QemuText.formatG(0.0001234, 3)).isEqualTo("0.000123");
        assertThat(QemuText.formatG(0.00001234, 3)).isEqualTo("1.23e-05");
        assertThat(QemuText.formatG(12.5, 3)).isEqualTo("12.5");
    }
}
