package io.jblock.options;

import io.jblock.block.AioMode;
import io.jblock.block.BlockException;
import io.jblock.block.DetectZeroes;
import io.jblock.block.DiscardMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@code -drive} strings. Messages that only qemu-system shows (not installed
 * here) are compared with QEMU 7.2's source text, cited per case; the others
 * are compared with the real tools in {@link QemuMessageParityTest}.
 */
class DriveConfigTest {
    @Test
    void aDoubledCommaIsALiteralCommaInValues() throws Exception {
        DriveConfig c = DriveConfig.parseDrive("file=a,,b.img,format=raw,node-name=x");
        assertThat(c.filename).isEqualTo("a,b.img");
        assertThat(c.options.peek("driver")).isEqualTo("raw");
        assertThat(KeyValueParser.parse("file=,,,,x,,", null)).containsEntry("file", ",,x,");
        assertThat(KeyValueParser.escape("a,b,,c")).isEqualTo("a,,b,,,,c");
    }

    @Test
    void aBareWordIsAFlagAndNoPrefixedWordIsFalseWithQemusWarning() throws Exception {
        List<String> warnings = new ArrayList<>();
        var kv = KeyValueParser.parse("snapshot,noread-only,file=x", null, warnings::add);
        assertThat(kv).containsEntry("snapshot", "on").containsEntry("read-only", "off");
        // Text as qemu-io --image-opts prints it for 'nocache.direct' (see QemuMessageParityTest's sibling run).
        assertThat(warnings).containsExactly(
                "short-form boolean option 'snapshot' deprecated\nPlease use snapshot=on instead",
                "short-form boolean option 'noread-only' deprecated\nPlease use read-only=off instead");
    }

    @Test
    void theShortFormWarningReadsAsQemuIoPrintsIt() {
        QemuTool.Result r = QemuTool.run(java.nio.file.Path.of("/tmp"), "qemu-io", "--image-opts", "-c", "quit",
                "driver=raw,nocache.direct,foo");
        List<String> warnings = new ArrayList<>();
        try {
            KeyValueParser.parse("driver=raw,nocache.direct,foo", null, warnings::add);
        } catch (BlockException e) {
            throw new AssertionError(e);
        }
        for (String w : warnings) {
            assertThat(r.output()).contains("qemu-io: warning: " + w + "\n");
        }
        assertThat(warnings).hasSize(2);
    }

    @Test
    void theImpliedKeyTakesTheFirstBareElement() throws Exception {
        assertThat(KeyValueParser.parse("disk.img,format=raw", "file"))
                .containsEntry("file", "disk.img").containsEntry("format", "raw");
    }

    @Test
    void aLaterValueReplacesAnEarlierOneAndTheFirstIdWins() throws Exception {
        assertThat(KeyValueParser.parse("a=1,a=2,id=x,id=y", null)).containsEntry("a", "2").containsEntry("id", "x");
        assertThat(DriveConfig.parseDrive("file=x,id=d0").id).isEqualTo("d0");
    }

    @Test
    void drivesKeysAreTakenAndTheRestGoToTheNode() throws Exception {
        DriveConfig c = DriveConfig.parseDrive("file=x.img,format=raw,cache=unsafe,aio=io_uring,read-only=on,"
                + "snapshot=on,discard=unmap,detect-zeroes=unmap,id=d0,node-name=n0,file.locking=off,if=none");
        assertThat(c.filename).isEqualTo("x.img");
        assertThat(c.readOnly).isTrue();
        assertThat(c.snapshot).isTrue();
        assertThat(c.discard).isEqualTo(DiscardMode.UNMAP);
        assertThat(c.detectZeroes).isEqualTo(DetectZeroes.UNMAP);
        assertThat(c.aio).isEqualTo(AioMode.IO_URING);
        assertThat(c.id).isEqualTo("d0");
        assertThat(c.cache.writeback()).isTrue();
        assertThat(c.options.remaining()).containsOnlyKeys("driver", "node-name", "file.locking", "cache.no-flush");
        assertThat(c.options.peek("cache.no-flush")).isEqualTo("on");
        assertThat(DriveConfig.parseDrive("file=x,readonly=on").readOnly).isTrue();
        assertThat(DriveConfig.parseDrive("file=x,media=cdrom").readOnly).isTrue();
    }

    /**
     * Messages only {@code -drive} gives; expected texts are QEMU 7.2's source, blockdev.c
     * (drive_new, blockdev_init, extract_common_blockdev_options, parse_block_error_action)
     * and util/qemu-option.c (parse_option_number).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            // blockdev.c qemu_opt_rename: "'%s' and its alias '%s' can't be used at the same time"
            "file=x,read-only=on,readonly=on | 'read-only' and its alias 'readonly' can't be used at the same time",
            "file=x,readonly=off,read-only=off | 'read-only' and its alias 'readonly' can't be used at the same time",
            // blockdev.c drive_new: bdrv_parse_cache_mode failed
            "file=x,cache=bogus | invalid cache option",
            "file=x,cache=WriteBack | invalid cache option",
            "file=x,cache= | invalid cache option",
            // blockdev.c extract_common_blockdev_options: bdrv_parse_aio failed
            "file=x,aio=bogus | invalid aio option",
            "file=x,aio= | invalid aio option",
            // qapi_enum_parse in extract_common_blockdev_options
            "file=x,detect-zeroes=bogus | invalid parameter value: bogus",
            // blockdev.c blockdev_init
            "file=x,format=raw,driver=raw | Cannot specify both 'driver' and 'format'",
            // block.c bdrv_open_common (also shown by qemu-io, see QemuMessageParityTest)
            "file=x,discard=bogus | Invalid discard option",
            // qapi_bool_parse for the common and legacy boolean options
            "file=x,snapshot=maybe | Parameter 'snapshot' expects 'on' or 'off'",
            "file=x,read-only=1 | Parameter 'read-only' expects 'on' or 'off'",
            "file=x,readonly=1 | Parameter 'read-only' expects 'on' or 'off'",
            "file=x,cache.writeback=1 | Parameter 'cache.writeback' expects 'on' or 'off'",
            "file=x,copy-on-read=1 | Parameter 'copy-on-read' expects 'on' or 'off'",
            // blockdev.c drive_new
            "file=x,media=tape | 'tape' invalid media",
            "file=x,if=usb | unsupported bus type 'usb'",
            "file=x,index=1,bus=1 | index cannot be used with bus and unit",
            // util/qemu-option.c parse_option_number
            "file=x,bus=one | Parameter 'bus' expects a number",
            // blockdev.c parse_block_error_action
            "file=x,werror=panic | 'panic' invalid write error action",
            "file=x,rerror=enospc | 'enospc' invalid read error action",
    })
    void driveOnlyMessagesAreQemusSourceText(String drive, String message) {
        assertThatThrownBy(() -> DriveConfig.parseDrive(drive)).isInstanceOf(BlockException.class)
                .hasMessage(message);
    }

    @Test
    void aliasesAreRenamedBeforeTheCacheModeIsParsed() {
        // drive_new renames readonly before it parses cache=, so the alias error wins.
        assertThatThrownBy(() -> DriveConfig.parseDrive("file=x,cache=bogus,readonly=on,read-only=on"))
                .hasMessage("'read-only' and its alias 'readonly' can't be used at the same time");
    }

    @Test
    void aBadIdFailsWithQemusMessageAndHint() {
        assertThatThrownBy(() -> DriveConfig.parseDrive("file=x,id=1x"))
                .hasMessage("Parameter 'id' expects an identifier\n"
                        + "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
    }
}
