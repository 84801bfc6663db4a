package io.jblock.cli.io;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Every qemu-io 7.2 command, sorted by name as {@code help} lists them. */
final class CommandTable {
    private CommandTable() {
    }

    static Map<String, IoCommand> all() {
        List<IoCommand> list = List.of(
                new IoCommand("abort", null, 0, 0, false, true, false, null,
                        "simulate a program crash using abort(3)", null, SessionCommands::abort),
                new IoCommand("aio_flush", null, 0, 0, false, false, false, null,
                        "completes all outstanding aio requests", null, ImageCommands::aioFlush),
                new IoCommand("aio_read", null, 2, -1, false, false, false, "[-Ciqv] [-P pattern] off len [len..]",
                        "asynchronously reads a number of bytes", CommandHelp.AIO_READ_HELP,
                        ReadCommands::aioRead),
                new IoCommand("aio_write", null, 2, -1, false, false, true,
                        "[-Cfiquz] [-P pattern] off len [len..]", "asynchronously writes a number of bytes",
                        CommandHelp.AIO_WRITE_HELP, WriteCommands::aioWrite),
                new IoCommand("alloc", "a", 1, 2, false, false, false, "offset [count]",
                        "checks if offset is allocated in the file", null, ImageCommands::alloc),
                new IoCommand("break", null, 2, 2, false, false, false, "event tag",
                        "sets a breakpoint on event and tags the stopped request as tag", null,
                        SessionCommands::breakpoint),
                new IoCommand("close", "c", 0, 0, false, false, false, null, "close the current open file", null,
                        SessionCommands::close),
                new IoCommand("discard", "d", 2, -1, false, false, true, "[-Cq] off len",
                        "discards a number of bytes at a specified offset", CommandHelp.DISCARD_HELP,
                        ImageCommands::discard),
                new IoCommand("flush", "f", 0, 0, false, false, false, null, "flush all in-core file state to disk",
                        null, ImageCommands::flush),
                new IoCommand("help", "?", 0, 1, true, false, false, "[command]", "help for one or all commands",
                        null, SessionCommands::help),
                new IoCommand("info", "i", 0, 0, false, false, false, null,
                        "prints information about the current file", null, ImageCommands::info),
                new IoCommand("length", "l", 0, 0, false, false, false, null, "gets the length of the current file",
                        null, ImageCommands::length),
                new IoCommand("map", null, 0, 0, false, false, false, "", "prints the allocated areas of a file",
                        null, ImageCommands::map),
                new IoCommand("open", "o", 1, -1, false, true, false,
                        "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]", "open the file specified by path",
                        CommandHelp.OPEN_HELP, SessionCommands::open),
                new IoCommand("quit", "q", -1, -1, true, false, false, null, "exit the program", null,
                        SessionCommands::quit),
                new IoCommand("read", "r", 2, -1, false, false, false,
                        "[-abCqv] [-P pattern [-s off] [-l len]] off len",
                        "reads a number of bytes at a specified offset", CommandHelp.READ_HELP, ReadCommands::read),
                new IoCommand("readv", null, 2, -1, false, false, false, "[-Cqv] [-P pattern] off len [len..]",
                        "reads a number of bytes at a specified offset", CommandHelp.READV_HELP,
                        ReadCommands::readv),
                new IoCommand("remove_break", null, 1, 1, false, false, false, "tag", "remove a breakpoint by tag",
                        null, SessionCommands::removeBreak),
                new IoCommand("reopen", null, 0, -1, false, false, false, "[(-r|-w)] [-c cache] [-o options]",
                        "reopens an image with new options", CommandHelp.REOPEN_HELP, SessionCommands::reopen),
                new IoCommand("resume", null, 1, 1, false, false, false, "tag", "resumes the request tagged as tag",
                        null, SessionCommands::resume),
                new IoCommand("sigraise", null, 1, 1, false, true, false, "signal", "raises a signal",
                        CommandHelp.SIGRAISE_HELP, SessionCommands::sigraise),
                new IoCommand("sleep", null, 1, 1, false, true, false, null,
                        "waits for the given value in milliseconds", null, SessionCommands::sleep),
                new IoCommand("truncate", "t", 1, 3, false, false, true, "[-m prealloc_mode] off",
                        "truncates the current file at the given offset", null, ImageCommands::truncate),
                new IoCommand("wait_break", null, 1, 1, false, false, false, "tag",
                        "waits for the suspension of a request", null, SessionCommands::waitBreak),
                new IoCommand("write", "w", 2, -1, false, false, true,
                        "[-bcCfnquz] [-P pattern | -s source_file] off len",
                        "writes a number of bytes at a specified offset", CommandHelp.WRITE_HELP,
                        WriteCommands::write),
                new IoCommand("writev", null, 2, -1, false, false, true, "[-Cfq] [-P pattern] off len [len..]",
                        "writes a number of bytes at a specified offset", CommandHelp.WRITEV_HELP,
                        WriteCommands::writev));
        Map<String, IoCommand> byName = new TreeMap<>();
        for (IoCommand c : list) {
            byName.put(c.name(), c);
        }
        return byName;
    }
}
