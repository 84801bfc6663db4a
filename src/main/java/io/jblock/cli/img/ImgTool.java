package io.jblock.cli.img;

import io.jblock.cli.Tool;

import java.io.InputStream;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code jblock img}, a drop-in for qemu-img 7.2: the standard options
 * ({@code -h}, {@code -V}, {@code -T}), then a command and its own options.
 * Every qemu-img command is in the table; the ones jblock does not have yet
 * say so and exit 1. A new command is one class implementing
 * {@link ImgCommand} and one line in {@link #COMMANDS}.
 */
public final class ImgTool implements Tool {
    private static final Map<String, Supplier<ImgCommand>> COMMANDS = new LinkedHashMap<>();

    static {
        for (String name : new String[] {"amend", "bench", "bitmap", "check", "commit", "compare", "convert",
                "create", "dd", "info", "map", "measure", "snapshot", "rebase", "resize"}) {
            COMMANDS.put(name, () -> notYet(name));
        }
        COMMANDS.put("check", CheckCommand::new);
        COMMANDS.put("create", CreateCommand::new);
        COMMANDS.put("info", InfoCommand::new);
        COMMANDS.put("map", MapCommand::new);
        COMMANDS.put("compare", CompareCommand::new);
        COMMANDS.put("convert", ConvertCommand::new);
        COMMANDS.put("dd", DdCommand::new);
        COMMANDS.put("resize", ResizeCommand::new);
        COMMANDS.put("replay", ReplayCommand::new); // jblock extension: power-cut replay of a write log
        COMMANDS.put("bench", BenchCommand::new);
        COMMANDS.put("measure", MeasureCommand::new);
        COMMANDS.put("snapshot", SnapshotCommand::new);
        COMMANDS.put("rebase", RebaseCommand::new);
        COMMANDS.put("commit", CommitCommand::new);
        COMMANDS.put("bitmap", BitmapCommand::new);
        COMMANDS.put("amend", AmendCommand::new);
    }

    @Override
    public int run(String prog, String[] args, InputStream in, PrintStream out, PrintStream err) {
        ImgContext ctx = new ImgContext(prog, in, out, err);
        try {
            return dispatch(ctx, args);
        } catch (ImgExit e) {
            return e.status();
        } finally {
            out.flush();
            err.flush();
        }
    }

    private static int dispatch(ImgContext ctx, String[] args) throws ImgExit {
        if (args.length < 1) {
            throw ctx.usageError("Not enough arguments");
        }
        String[] argv = new String[args.length + 1];
        argv[0] = ctx.prog();
        System.arraycopy(args, 0, argv, 1, args.length);
        CommandLine cl = new CommandLine(ctx, argv, "+hVT:", CommandLine.flag("help", 'h'),
                CommandLine.flag("version", 'V'), CommandLine.withArgument("trace", 'T'));
        int c;
        while ((c = cl.next()) != -1) {
            switch (c) {
                case 'h' -> {
                    ctx.out().print(ImgHelp.help(ctx.prog()));
                    return 0;
                }
                case 'V' -> {
                    ctx.out().print(ImgHelp.version());
                    return 0;
                }
                case 'T' -> ctx.warn("tracing is not available in jblock; '-T " + cl.optarg() + "' ignored");
                default -> throw new IllegalStateException("option " + (char) c);
            }
        }
        var rest = cl.operands();
        if (rest.isEmpty()) {
            // qemu-img exits quietly with success when the options leave no command ("qemu-img --").
            return 0;
        }
        String name = rest.getFirst();
        Supplier<ImgCommand> command = COMMANDS.get(name);
        if (command == null) {
            throw ctx.usageError("Command not found: " + name);
        }
        return command.get().run(ctx, rest.toArray(new String[0]));
    }

    /** The commands qemu-img has, in its order. */
    static java.util.Set<String> commandNames() {
        return COMMANDS.keySet();
    }

    private static ImgCommand notYet(String name) {
        return (ctx, args) -> {
            throw ctx.fail("the '" + name + "' command is not available yet in this version of jblock");
        };
    }
}
