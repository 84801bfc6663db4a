package io.jblock.cli.img;

import io.jblock.options.KeyValueParser;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CreateOptionsTest {
    private static CreateOptions raw() {
        return new CreateOptions(CreateOptions.append(CreateOptions.RAW, CreateOptions.FILE));
    }

    @Test
    void laterValuesWinAndTheFormattingLineFollowsTheDeclaredOrder() throws Exception {
        CreateOptions o = raw();
        o.parse("preallocation=off,extent_size_hint=1M,nonocow,size=1k,size=2k,preallocation=full", w -> { });
        assertThat(o.formattingLine()).isEqualTo("size=2048 nocow=off preallocation=full extent_size_hint=1048576");
    }

    @Test
    void doubledCommasAreLiteralAndPrintedDoubledAgain() throws Exception {
        CreateOptions o = raw();
        o.parse("preallocation=a,,b", w -> { });
        assertThat(o.text("preallocation")).isEqualTo("a,b");
        assertThat(o.formattingLine()).isEqualTo("preallocation=a,,b");
    }

    @Test
    void aFlagStartingWithNoIsTheRestSetToOff() {
        assertThatThrownBy(() -> raw().parse("nocow", w -> { })).hasMessage("Invalid parameter 'cow'");
    }

    @Test
    void sizesAboveTwoToTheSixtyThreePrintAsQemuDoesSigned() throws Exception {
        CreateOptions o = raw();
        o.parse("size=8E", w -> { });
        assertThat(o.formattingLine()).isEqualTo("size=-9223372036854775808");
    }

    @Test
    void optionListsAreCheckedAsQemuImgChecksThem() {
        assertThat(CreateOptions.isValidList("")).isFalse();
        assertThat(CreateOptions.isValidList(",a")).isFalse();
        assertThat(CreateOptions.isValidList("a,")).isFalse();
        assertThat(CreateOptions.isValidList("a,,")).isTrue();
        assertThat(CreateOptions.isValidList("a,,,")).isFalse();
        assertThat(KeyValueParser.hasHelpOption("size=1M,help")).isTrue();
        assertThat(KeyValueParser.hasHelpOption("?")).isTrue();
        assertThat(KeyValueParser.hasHelpOption("help=1")).isFalse();
        assertThat(KeyValueParser.hasHelpOption("a,,help")).isFalse();
    }

    @Test
    void helpIsSortedAndPaddedToTwentyTwoColumns() {
        assertThat(CreateOptions.help(CreateOptions.FILE)).isEqualTo("""
                  extent_size_hint=<size> - Extent size hint for the image file, 0 to disable
                  nocow=<bool (on/off)>  - Turn off copy-on-write (valid only on btrfs)
                  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)
                  size=<size>            - Virtual disk size
                """);
    }
}
