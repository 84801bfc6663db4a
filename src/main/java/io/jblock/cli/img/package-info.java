/**
 * {@code jblock img}: a drop-in for qemu-img 7.2, same options, text, JSON
 * and exit statuses, checked against the real qemu-img by the tests.
 *
 * <h2>Layout</h2>
 * <ul>
 *   <li>{@link io.jblock.cli.img.ImgTool}: the standard options and the table
 *       of commands. A command is one class implementing {@code ImgCommand}
 *       plus one line in the table; commands not written yet answer that
 *       they are not available yet.</li>
 *   <li>{@code CommandLine}: qemu-img's getopt loop and its two messages;
 *       {@code ImgContext}: the streams and qemu-img's ways to complain;
 *       {@code ImgExit}: ends a command with a status once it has spoken.</li>
 *   <li>QEMU's syntaxes: {@code QemuSize} (sizes), {@code QemuJson} (its
 *       JSON printer, member order included); {@code -o} and
 *       {@code --image-opts} are QemuOpts strings, parsed by
 *       {@link io.jblock.options.KeyValueParser}.</li>
 *   <li>create: {@code CreateCommand}, {@code CreateOptions} (QemuOpts
 *       semantics and help), {@code RawCreator} (hands the file to its
 *       protocol: the file protocol's {@code create} makes it, as QEMU's
 *       bdrv_create).</li>
 *   <li>info: {@code InfoCommand}, {@code ImageOpener} (img_open),
 *       {@code ImageName} (what "image:" shows), {@code ImageInfo}.</li>
 *   <li>map: {@code MapCommand}, {@code MapEntry} (one run, walking the
 *       backing chain layer by layer as qemu-img does, with the host offset
 *       from {@link io.jblock.block.BlockStatus}).</li>
 *   <li>compare: {@code CompareCommand}; {@code SectorImage} answers for
 *       the sector-rounded image QEMU sees (a 5-byte file is 512 bytes);
 *       {@code Progress} is -p.</li>
 *   <li>convert: {@code ConvertCommand} (options and checks in qemu-img's
 *       order), {@code ConvertTarget} (creation, one method to extend per
 *       format), {@code ConvertJob} (the copy, on up to 16 worker threads),
 *       {@code ZeroScan} (-S), {@code RateLimit} (-r), {@code DurableFlush}
 *       (the one real flush that ends a convert under its default cache).</li>
 *   <li>dd: {@code DdCommand}; resize: {@code ResizeCommand}.</li>
 *   <li>bench: {@code BenchCommand} (options, output, one virtual thread per
 *       request in flight), {@code BenchSchedule} (offsets, and flushes with
 *       or without draining, in qemu-img's order), {@code BenchFailure}
 *       (the first failure, flushes beside the requests).</li>
 * </ul>
 *
 * <h2>Matching qemu-img</h2>
 * The order of checks is part of the behaviour (which error a doubly wrong
 * command line gets), so each command follows qemu-img's order and says so.
 * Where jblock differs on purpose it says that it is jblock: the version
 * lines, the format list in --help, and the formats, protocols, commands and
 * --object that are not available yet.
 */
package io.jblock.cli.img;
