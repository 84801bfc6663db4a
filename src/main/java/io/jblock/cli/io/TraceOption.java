package io.jblock.cli.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * qemu-io's {@code -T [[enable=]PATTERN][,events=FILE][,file=FILE]}.
 * jblock has no trace events, so every plain event name is unknown and
 * warned about as QEMU warns, while a wildcard pattern silently matches
 * nothing. The option is parsed and checked as QEMU does.
 */
final class TraceOption {
    private TraceOption() {
    }

    /** False after printing why the option is wrong (the run then ends with status 1). */
    static boolean apply(IoSession s, String spec) {
        boolean first = true;
        for (String element : spec.split(",")) {
            String key;
            String value;
            int eq = element.indexOf('=');
            if (eq < 0 && first) {
                key = "enable";
                value = element;
            } else if (eq < 0) {
                key = element;
                value = "on";
            } else {
                key = element.substring(0, eq);
                value = element.substring(eq + 1);
            }
            first = false;
            switch (key) {
                case "enable" -> enable(s, value, s.prog + ": warning: ");
                case "events" -> {
                    if (!events(s, value)) {
                        return false;
                    }
                }
                case "file" -> { /* where trace output would go; there is none */ }
                default -> {
                    s.error("Invalid parameter '" + key + "'");
                    return false;
                }
            }
        }
        return true;
    }

    private static void enable(IoSession s, String pattern, String prefix) {
        if (!pattern.isEmpty() && pattern.indexOf('*') < 0 && pattern.indexOf('?') < 0) {
            s.err.print(prefix + "trace event '" + pattern + "' does not exist\n");
        }
    }

    /** An events file: one pattern a line, '#' comments. */
    private static boolean events(IoSession s, String file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of(file));
        } catch (NoSuchFileException e) {
            s.err.print(s.prog + ":" + file + ": No such file or directory\n");
            return false;
        } catch (IOException e) {
            s.err.print(s.prog + ":" + file + ": Input/output error\n");
            return false;
        }
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (!line.isEmpty() && !line.startsWith("#")) {
                enable(s, line, s.prog + ":" + file + ":" + (i + 1) + ": warning: ");
            }
        }
        return true;
    }
}
