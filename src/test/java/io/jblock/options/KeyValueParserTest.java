package io.jblock.options;

import io.jblock.block.BlockException;
import io.jblock.options.KeyValueParser.Element;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * QemuOpts syntax as both its users need it: {@code parse} with -drive and
 * --image-opts semantics, {@code elements} for qemu-img's {@code -o}, which
 * checks every element in order. -drive cases are in {@link DriveConfigTest}.
 */
class KeyValueParserTest {
    @Test
    void elementsKeepTheOrderRepeatedKeysAndId() {
        assertThat(KeyValueParser.elements("size=1M,id=x,size=2M,a=b,,c", null, null)).containsExactly(
                new Element("size", "1M"), new Element("id", "x"), new Element("size", "2M"),
                new Element("a", "b,c"));
    }

    @Test
    void elementsTurnFlagsIntoOnAndOffWithoutAWarningWhenNoneIsWanted() {
        assertThat(KeyValueParser.elements("nocow,lazy", null, null)).containsExactly(
                new Element("cow", "off"), new Element("lazy", "on"));
    }

    @Test
    void theImpliedKeyTakesOnlyAFirstBareElementWhoseValueMayHoldCommas() {
        assertThat(KeyValueParser.elements("a,,b.img,ro,x=1", "file", null)).containsExactly(
                new Element("file", "a,b.img"), new Element("ro", "on"), new Element("x", "1"));
        assertThat(KeyValueParser.elements("x=1,disk.img", "file", null)).containsExactly(
                new Element("x", "1"), new Element("disk.img", "on"));
    }

    @Test
    void aKeyEndsAtTheFirstEqualsSoAValueMayHoldMore() {
        assertThat(KeyValueParser.elements("a=b=c,=d,e=", null, null)).containsExactly(
                new Element("a", "b=c"), new Element("", "d"), new Element("e", ""));
    }

    @Test
    void aBareHelpIsNotWarnedAboutButNohelpIs() {
        List<String> warnings = new ArrayList<>();
        KeyValueParser.elements("help,?,nohelp", null, warnings::add);
        assertThat(warnings).containsExactly(
                "short-form boolean option 'nohelp' deprecated\nPlease use help=off instead");
    }

    @Test
    void nohelpIsWarnedAboutAsQemuImgDoes() throws Exception {
        QemuTool.Result r = QemuTool.run(Path.of("/tmp"), "qemu-img", "info", "--image-opts",
                "driver=raw,file.filename=/nonexistent/x.img,nohelp");
        List<String> warnings = new ArrayList<>();
        KeyValueParser.parse("driver=raw,file.filename=/nonexistent/x.img,nohelp", "file", warnings::add);
        assertThat(warnings).hasSize(1);
        assertThat(r.output()).startsWith("qemu-img: warning: " + warnings.getFirst() + "\n");
    }

    @Test
    void parseKeepsTheLastValueAtTheFirstPositionAndPutsTheFirstIdFirst() throws Exception {
        assertThat(KeyValueParser.parse("a=1,b=2,id=x,a=3,id=y", null)).containsExactly(
                java.util.Map.entry("id", "x"), java.util.Map.entry("a", "3"), java.util.Map.entry("b", "2"));
    }

    @Test
    void parseRefusesAnIdThatIsNoIdentifierWithQemusHint() {
        assertThatThrownBy(() -> KeyValueParser.parse("id=1x,a=b", null)).isInstanceOf(BlockException.class)
                .hasMessage("Parameter 'id' expects an identifier\n" + KeyValueParser.ID_HINT);
        assertThatThrownBy(() -> KeyValueParser.parse("id=,a=b", null)).isInstanceOf(BlockException.class);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "help|true", "?|true", "size=1M,help|true", "size=1M,?,x=y|true", "help=1|false", "a,,help|false",
        "a,,,help|true", "nohelp|false", "size=help|false", "''|false", "Help|false"})
    void hasHelpOptionLooksAtValuesSplitAtSingleCommas(String text, boolean help) {
        assertThat(KeyValueParser.hasHelpOption(text)).isEqualTo(help);
    }
}
