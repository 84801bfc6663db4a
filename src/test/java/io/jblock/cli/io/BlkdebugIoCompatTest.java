package io.jblock.cli.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * blkdebug through qemu-io, compared with the real qemu-io 7.2: rules from a
 * config file and from options, their errors, and the breakpoint commands.
 */
class BlkdebugIoCompatTest {
    @TempDir
    Path tmp;

    /** Runs {@code args} (IMG for the image, CONF for {@code config}'s file) through both tools; compares. */
    private void assertSame(String config, String... args) throws Exception {
        QemuIoOracle.requireQemu();
        Path conf = tmp.resolve("blkdebug.conf");
        Files.writeString(conf, config);
        List<String> list = new ArrayList<>();
        for (String a : args) {
            list.add(a.replace("CONF", conf.toString()));
        }
        Path forQemu = QemuIoOracle.createImage(Files.createDirectories(tmp.resolve("q" + System.nanoTime())), "1M",
                List.of());
        Path forJblock = QemuIoOracle.createImage(Files.createDirectories(tmp.resolve("j" + System.nanoTime())),
                "1M", List.of());
        QemuIoOracle.Outcome qemu = QemuIoOracle.runQemu(list, null, forQemu);
        QemuIoOracle.Outcome jblock = QemuIoOracle.runJblock(list, null, forJblock);
        String context = list + " with config " + config;
        assertThat(jblock.stdout()).as("stdout of " + context).isEqualTo(qemu.stdout());
        assertThat(jblock.stderr()).as("stderr of " + context).isEqualTo(qemu.stderr());
        assertThat(jblock.status()).as("exit status of " + context).isEqualTo(qemu.status());
        assertThat(Files.mismatch(jblock.image(), qemu.image())).as("image after " + context).isEqualTo(-1);
    }

    private static String[] script(String image, String... commands) {
        List<String> args = new ArrayList<>(List.of("-f", "raw"));
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        args.add(image);
        return args.toArray(String[]::new);
    }

    @Test
    void anInjectedErrnoReachesTheCommand() throws Exception {
        assertSame("[inject-error]\nevent = \"write_aio\"\nerrno = \"28\"\niotype = \"write\"\n",
                script("blkdebug:CONF:" + QemuIoOracle.IMG, "write -P 1 0 4k", "read 0 4k", "write -P 2 4k 4k"));
    }

    @Test
    void onceSectorAndSetStateFromAConfigFile() throws Exception {
        assertSame("# comment\n\n[inject-error]\n  event = \"write_aio\"\n  sector = \"8\"\n  once = \"on\"\n"
                        + "[set-state]\nevent = \"read_aio\"\nnew_state = \"2\"\n"
                        + "[inject-error]\nevent = \"write_aio\"\nstate = \"2\"\nerrno = \"28\"\niotype = \"write\"\n",
                script("blkdebug:CONF:" + QemuIoOracle.IMG, "write -P 1 0 4k", "write -P 2 4k 4k",
                        "write -P 3 4k 4k", "read -P 3 4k 4k", "write 0 512"));
    }

    @Test
    void configFileErrorsAreQemus() throws Exception {
        for (String config : List.of("junk\n", "[foo]\nx = \"1\"\n", "[inject-error]\nevent = \"bogus\"\n",
                "[inject-error]\nfoo = \"1\"\n", "[inject-error]\nstate = \"x\"\n",
                "[inject-error]\nevent = \"write_aio\"\niotype = \"foo\"\n", "[set-state]\nstate = \"1\"\n",
                "[inject-error]\nevent = \"write_aio\"\nonce = \"maybe\"\n", "[inject-error]\njunk\n",
                "[inject-error]\nevent=\"read_aio\"\n")) {
            assertSame(config, script("blkdebug:CONF:" + QemuIoOracle.IMG, "read 0 512"));
        }
        assertSame("", script("blkdebug:" + QemuIoOracle.IMG, "read 0 512"));
        assertSame("", script("blkdebug:/nonexistent/conf:" + QemuIoOracle.IMG, "read 0 512"));
    }

    @Test
    void rulesAndLimitsGivenAsOptions() throws Exception {
        String base = "driver=raw,file.driver=blkdebug,file.image.filename=" + QemuIoOracle.IMG;
        for (String extra : List.of(",file.inject-error.0.event=write_aio,file.inject-error.0.iotype=write",
                ",file.inject-error.event=write_aio,file.inject-error.iotype=write,file.inject-error.errno=28",
                ",file.align=3", ",file.align=512,file.max-transfer=1000", ",file.inject-error.0.errno=5",
                ",file.inject-error.0.event=write_aio,file.inject-error.0.bogus=5", ",file.bogus=1",
                ",file.align=4096,file.opt-discard=512")) {
            assertSame("", "--image-opts", "-c", "write -P 5 0 4k", "-c", "read -P 5 0 4k", base + extra);
        }
    }

    @Test
    void alignPadsRequestsAndSectorRulesSeeThePaddedRequest() throws Exception {
        assertSame("", "-t", "writeback", "--image-opts", "-c", "write -P 1 3000 512", "-c", "write -P 2 8192 512",
                "-c", "read -P 2 8192 512", "-c", "write -P 3 8000 500", "-c", "read -P 3 8000 500",
                "driver=raw,file.driver=blkdebug,file.image.filename=" + QemuIoOracle.IMG + ",file.align=4096,"
                        + "file.inject-error.0.event=write_aio,file.inject-error.0.sector=1,"
                        + "file.inject-error.0.iotype=write");
    }

    @Test
    void breakpointsStopAndResumeRequests() throws Exception {
        assertSame("", script("blkdebug::" + QemuIoOracle.IMG, "break write_aio A", "break write_aio B",
                "remove_break B", "remove_break C", "resume X", "break foo A", "aio_write -P 9 0 4k",
                "aio_read 0 4k", "wait_break A", "remove_break A", "aio_flush", "read -P 9 0 4k"));
        assertSame("", script("blkdebug::" + QemuIoOracle.IMG, "break write_aio A", "aio_write 0 4k",
                "wait_break A", "resume A"));
    }

    @Test
    void withoutBlkdebugTheBreakpointCommandsSayNotSupported() throws Exception {
        assertSame("", script(QemuIoOracle.IMG, "break write_aio A", "remove_break A", "resume A"));
    }
}
