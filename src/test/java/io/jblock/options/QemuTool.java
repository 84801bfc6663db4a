package io.jblock.options;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Runs the installed QEMU 7.2 tools, the oracle. A missing tool fails the
 * test: the comparison is the point, so it must never be skipped.
 */
final class QemuTool {
    private QemuTool() {
    }

    /** What a tool printed (stdout and stderr together) and its exit code. */
    record Result(int exitCode, String output) {
    }

    static Result run(Path dir, String... command) {
        Path tool = Path.of("/usr/bin", command[0]);
        if (!Files.isExecutable(tool)) {
            fail(command[0] + " is not installed at " + tool + ": the interop tests need QEMU 7.2's tools");
        }
        List<String> cmd = new ArrayList<>(List.of(command));
        cmd.set(0, tool.toString());
        try {
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", command) + " did not finish");
            }
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
        } catch (IOException | InterruptedException e) {
            throw new AssertionError("could not run " + String.join(" ", command), e);
        }
    }

    /**
     * The error text after {@code prefix} on the first line that has it, with
     * any hint lines that follow (QEMU prints error_append_hint text right after).
     */
    static String errorAfter(Result r, String prefix) {
        assertThat(r.exitCode()).as("exit code of a failing QEMU command; output:\n%s", r.output()).isNotZero();
        int at = r.output().indexOf(prefix);
        assertThat(at).as("'%s' in QEMU's output:\n%s", prefix, r.output()).isGreaterThanOrEqualTo(0);
        String rest = r.output().substring(at + prefix.length());
        return rest.endsWith("\n") ? rest.substring(0, rest.length() - 1) : rest;
    }
}
