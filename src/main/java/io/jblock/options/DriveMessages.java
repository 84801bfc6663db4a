package io.jblock.options;

/**
 * The error texts of drive and node options, word for word QEMU 7.2's, and
 * where each was taken from. "Tool" means the text was read from the output
 * of the installed qemu-img / qemu-io / qemu-nbd 7.2.22 (the tests compare
 * against them); "source" means no installed tool can show it ({@code -drive}
 * belongs to qemu-system, which is not installed) and the text is QEMU's
 * source, cited by file and function.
 *
 * <table>
 * <caption>Messages and their sources</caption>
 * <tr><th>situation</th><th>message</th><th>from</th></tr>
 * <tr><td>bad boolean (any key)</td><td>Parameter 'cache.no-flush' expects 'on' or 'off'</td>
 *     <td>tool: qemu-io {@code open -o cache.no-flush=bogus}; util/qapi-util.c qapi_bool_parse</td></tr>
 * <tr><td>{@code -drive cache=} bad</td><td>invalid cache option</td>
 *     <td>source: blockdev.c drive_new (bdrv_parse_cache_mode fails)</td></tr>
 * <tr><td>qemu-io {@code -t} bad</td><td>Invalid cache option: X</td><td>tool: qemu-io</td></tr>
 * <tr><td>qemu-nbd {@code --cache} bad</td><td>Invalid cache mode `X'</td><td>tool: qemu-nbd</td></tr>
 * <tr><td>{@code discard=} bad (drive or node)</td><td>Invalid discard option</td>
 *     <td>tool: qemu-io {@code open -o discard=bogus}; block.c bdrv_open_common</td></tr>
 * <tr><td>qemu-io {@code -d} bad</td><td>Invalid discard option: X</td><td>tool: qemu-io</td></tr>
 * <tr><td>qemu-nbd {@code --discard} bad</td><td>Invalid discard mode `X'</td><td>tool: qemu-nbd</td></tr>
 * <tr><td>{@code detect-zeroes=} bad</td><td>invalid parameter value: X</td>
 *     <td>tool: qemu-io {@code open -o detect-zeroes=bogus}; qapi/qapi-util.c qapi_enum_parse</td></tr>
 * <tr><td>qemu-nbd {@code --detect-zeroes} bad</td>
 *     <td>Failed to parse detect_zeroes mode: invalid parameter value: X</td><td>tool: qemu-nbd</td></tr>
 * <tr><td>detect-zeroes=unmap without discard=unmap</td>
 *     <td>setting detect-zeroes to unmap is not allowed without setting discard operation to unmap</td>
 *     <td>tool: qemu-io {@code open -o discard=off,detect-zeroes=unmap}, qemu-nbd
 *     {@code --detect-zeroes=unmap}; block.c bdrv_parse_detect_zeroes</td></tr>
 * <tr><td>{@code -drive aio=} bad</td><td>invalid aio option</td>
 *     <td>source: blockdev.c extract_common_blockdev_options (bdrv_parse_aio fails)</td></tr>
 * <tr><td>node {@code aio=} bad (file driver)</td><td>invalid parameter value: X</td>
 *     <td>tool: qemu-img info {@code json:{...,"aio":"bogus"}}</td></tr>
 * <tr><td>qemu-io {@code -i} bad</td><td>Invalid aio option: X</td><td>tool: qemu-io</td></tr>
 * <tr><td>qemu-nbd {@code --aio} bad</td><td>Invalid aio mode 'X'</td><td>tool: qemu-nbd</td></tr>
 * <tr><td>aio=native without cache.direct=on</td>
 *     <td>aio=native was specified, but it requires cache.direct=on, which was not specified.</td>
 *     <td>tool: qemu-io {@code -i native}; block/file-posix.c raw_open_common</td></tr>
 * <tr><td>read-only and readonly together</td>
 *     <td>'read-only' and its alias 'readonly' can't be used at the same time</td>
 *     <td>source: blockdev.c qemu_opt_rename, called by drive_new (the text is also in the
 *     qemu-io binary, but no tool path reaches it)</td></tr>
 * <tr><td>format and driver together</td><td>Cannot specify both 'driver' and 'format'</td>
 *     <td>source: blockdev.c blockdev_init</td></tr>
 * <tr><td>bad media / bus / error action</td>
 *     <td>'X' invalid media / unsupported bus type 'X' / 'X' invalid read error action</td>
 *     <td>source: blockdev.c drive_new, parse_block_error_action</td></tr>
 * <tr><td>bad number (bus, unit, index)</td><td>Parameter 'bus' expects a number</td>
 *     <td>source: util/qemu-option.c parse_option_number</td></tr>
 * <tr><td>index with bus or unit</td><td>index cannot be used with bus and unit</td>
 *     <td>source: blockdev.c drive_new</td></tr>
 * <tr><td>bad id</td><td>Parameter 'id' expects an identifier (+ hint line)</td>
 *     <td>tool: qemu-img {@code --image-opts id=1x,...}; util/qemu-option.c qemu_opts_create</td></tr>
 * <tr><td>short-form boolean</td><td>short-form boolean option 'X' deprecated / Please use X=on instead</td>
 *     <td>tool: qemu-io {@code --image-opts} (a warning)</td></tr>
 * <tr><td>unknown format key</td><td>Block format 'raw' does not support the option 'foo'</td>
 *     <td>tool: qemu-img {@code --image-opts}</td></tr>
 * <tr><td>unknown protocol key</td><td>Block protocol 'file' doesn't support the option 'foo'</td>
 *     <td>tool: qemu-io {@code open -o file.foo=1}</td></tr>
 * <tr><td>unknown driver</td><td>Unknown driver 'foo'</td><td>tool: qemu-io {@code open -o driver=foo}</td></tr>
 * <tr><td>no driver, no file</td><td>Must specify either driver or file</td>
 *     <td>tool: qemu-io {@code --image-opts foo=bar}</td></tr>
 * <tr><td>file child and file name together</td>
 *     <td>Can't specify 'file' and 'filename' options at the same time</td>
 *     <td>tool: qemu-io {@code open -o file.filename=t.img t.img}</td></tr>
 * <tr><td>file driver without a name</td><td>The 'file' block driver requires a file name</td>
 *     <td>tool: qemu-img {@code --image-opts driver=file}</td></tr>
 * <tr><td>unknown protocol prefix</td><td>Unknown protocol 'foo'</td><td>tool: qemu-img info foo:bar</td></tr>
 * <tr><td>child given as a node name</td><td>Cannot find device='x' nor node-name='x'</td>
 *     <td>tool: qemu-img {@code --image-opts driver=raw,file=t.img}</td></tr>
 * <tr><td>node name bad / repeated / long</td>
 *     <td>Invalid node-name: 'x' / Duplicate nodes with node-name='x' / Node name too long</td>
 *     <td>tool: qemu-img {@code --image-opts}</td></tr>
 * <tr><td>force-share on a writable node</td><td>force-share=on can only be used with read-only images</td>
 *     <td>tool: qemu-img {@code --image-opts}</td></tr>
 * <tr><td>bad size</td><td>Parameter 'offset' expects a non-negative number below 2^64 (+ hint)</td>
 *     <td>tool: qemu-img {@code --image-opts ...,offset=1.5}</td></tr>
 * <tr><td>JSON errors</td><td>Could not parse the JSON options: JSON parse error, ... /
 *     Invalid JSON object given</td><td>tool: qemu-img info {@code json:...}</td></tr>
 * <tr><td>keyval errors ({@code --blockdev})</td>
 *     <td>Invalid parameter 'x' / Expected '=' after parameter 'x' / Parameters 'a.*' used
 *     inconsistently / Parameter 'a.1' missing</td>
 *     <td>tool: qemu-img {@code --object} (parsed by util/keyval.c in 7.2)</td></tr>
 * </table>
 */
public final class DriveMessages {
    public static final String INVALID_CACHE = "invalid cache option";
    public static final String INVALID_DISCARD = "Invalid discard option";
    public static final String INVALID_AIO = "invalid aio option";
    public static final String DETECT_ZEROES_UNMAP_NEEDS_DISCARD =
            "setting detect-zeroes to unmap is not allowed without setting discard operation to unmap";
    public static final String AIO_NATIVE_NEEDS_DIRECT =
            "aio=native was specified, but it requires cache.direct=on, which was not specified.";
    public static final String READ_ONLY_ALIAS =
            "'read-only' and its alias 'readonly' can't be used at the same time";
    public static final String DRIVER_AND_FORMAT = "Cannot specify both 'driver' and 'format'";

    private DriveMessages() {
    }

    /** qapi_enum_parse's message, used for every enum option of a node and for -drive detect-zeroes. */
    public static String invalidValue(String value) {
        return "invalid parameter value: " + value;
    }

    /** qapi_bool_parse's message. */
    public static String expectsOnOff(String key) {
        return "Parameter '" + key + "' expects 'on' or 'off'";
    }

    /** qemu-io's {@code -t}. */
    public static String qemuIoInvalidCache(String value) {
        return "Invalid cache option: " + value;
    }

    /** qemu-io's {@code -d}. */
    public static String qemuIoInvalidDiscard(String value) {
        return "Invalid discard option: " + value;
    }

    /** qemu-io's {@code -i}. */
    public static String qemuIoInvalidAio(String value) {
        return "Invalid aio option: " + value;
    }

    /** qemu-nbd's {@code --cache}. */
    public static String qemuNbdInvalidCache(String value) {
        return "Invalid cache mode `" + value + "'";
    }

    /** qemu-nbd's {@code --discard}. */
    public static String qemuNbdInvalidDiscard(String value) {
        return "Invalid discard mode `" + value + "'";
    }

    /** qemu-nbd's {@code --detect-zeroes}. */
    public static String qemuNbdInvalidDetectZeroes(String value) {
        return "Failed to parse detect_zeroes mode: invalid parameter value: " + value;
    }

    /** qemu-nbd's {@code --aio}. */
    public static String qemuNbdInvalidAio(String value) {
        return "Invalid aio mode '" + value + "'";
    }
}
