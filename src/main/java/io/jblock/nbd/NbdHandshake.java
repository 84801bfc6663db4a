package io.jblock.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The fixed-newstyle handshake and option haggling, up to the start of the
 * transmission phase. Every option's payload is read whole (or drained when
 * over {@link Nbd#MAX_OPTION_LENGTH}) before it is answered, so an option the
 * server refuses never costs the stream its sync.
 */
final class NbdHandshake {
    private static final System.Logger LOG = System.getLogger(NbdHandshake.class.getName());

    private final NbdTransport t;
    private final Map<String, NbdExport> exports;
    private boolean structured;
    private boolean noZeroes;
    private List<NbdSession.MetaContext> contexts = List.of();
    private String contextExport;

    NbdHandshake(NbdTransport transport, Map<String, NbdExport> exports) {
        this.t = transport;
        this.exports = exports;
    }

    /** Runs the handshake; the session to serve, or null when the client went away or was refused. */
    NbdSession run() throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18);
        hello.putLong(Nbd.NBDMAGIC).putLong(Nbd.IHAVEOPT)
                .putShort((short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES)).flip();
        t.writeFully(hello);
        ByteBuffer cf = ByteBuffer.allocate(4);
        t.readFully(cf);
        int clientFlags = cf.getInt(0);
        if ((clientFlags & ~(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES)) != 0) {
            LOG.log(System.Logger.Level.DEBUG, "unknown client flags 0x{0}", Integer.toHexString(clientFlags));
            return null; // The spec: a server MUST close on client flags it does not know.
        }
        noZeroes = (clientFlags & Nbd.FLAG_C_NO_ZEROES) != 0;
        ByteBuffer head = ByteBuffer.allocate(16);
        while (true) {
            head.clear();
            t.readFully(head);
            if (head.getLong(0) != Nbd.IHAVEOPT) {
                LOG.log(System.Logger.Level.DEBUG, "bad option magic; closing");
                return null;
            }
            int option = head.getInt(8);
            long length = Integer.toUnsignedLong(head.getInt(12));
            if (length > Nbd.MAX_OPTION_LENGTH) {
                t.skip(length);
                if (option == Nbd.OPT_EXPORT_NAME) {
                    return null;
                }
                replyError(option, Nbd.REP_ERR_TOO_BIG, "option payload of " + length + " bytes is too large");
                continue;
            }
            ByteBuffer data = ByteBuffer.allocate((int) length);
            t.readFully(data);
            data.flip();
            switch (option) {
                case Nbd.OPT_EXPORT_NAME -> {
                    return exportName(data);
                }
                case Nbd.OPT_ABORT -> {
                    reply(option, Nbd.REP_ACK, null);
                    return null;
                }
                case Nbd.OPT_LIST -> list(data);
                case Nbd.OPT_STARTTLS -> replyError(option, Nbd.REP_ERR_POLICY, "TLS not configured");
                case Nbd.OPT_INFO, Nbd.OPT_GO -> {
                    NbdExport e = infoOrGo(option, data);
                    if (e != null && option == Nbd.OPT_GO) {
                        return session(e);
                    }
                }
                case Nbd.OPT_STRUCTURED_REPLY -> {
                    if (data.hasRemaining()) {
                        replyError(option, Nbd.REP_ERR_INVALID, "structured reply option takes no data");
                    } else if (structured) {
                        replyError(option, Nbd.REP_ERR_INVALID, "structured reply already negotiated");
                    } else {
                        structured = true;
                        reply(option, Nbd.REP_ACK, null);
                    }
                }
                case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT -> metaContext(option, data);
                default -> replyError(option, Nbd.REP_ERR_UNSUP, "option " + option + " not supported");
            }
        }
    }

    private NbdSession session(NbdExport e) {
        List<NbdSession.MetaContext> selected = e.name().equals(contextExport) ? contexts : List.of();
        return new NbdSession(e, structured, selected);
    }

    /** NBD_OPT_EXPORT_NAME: no reply on success, the export's size and flags instead; close on failure. */
    private NbdSession exportName(ByteBuffer data) throws IOException {
        String name = utf8(data, data.remaining());
        NbdExport e = name == null ? null : exports.get(name);
        if (e == null) {
            LOG.log(System.Logger.Level.DEBUG, "unknown export requested with NBD_OPT_EXPORT_NAME");
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124));
        b.putLong(e.drive().length()).putShort((short) NbdSession.transmissionFlags(e, structured));
        b.position(b.capacity()).flip();
        t.writeFully(b);
        return session(e);
    }

    private void list(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            replyError(Nbd.OPT_LIST, Nbd.REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
            return;
        }
        for (NbdExport e : exports.values()) {
            byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
            byte[] desc = e.description() == null ? new byte[0] : e.description().getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(4 + name.length + desc.length);
            b.putInt(name.length).put(name).put(desc).flip();
            reply(Nbd.OPT_LIST, Nbd.REP_SERVER, b);
        }
        reply(Nbd.OPT_LIST, Nbd.REP_ACK, null);
    }

    /** NBD_OPT_INFO and NBD_OPT_GO: the export found (and answered), or null after an error reply. */
    private NbdExport infoOrGo(int option, ByteBuffer data) throws IOException {
        if (data.remaining() < 6) {
            replyError(option, Nbd.REP_ERR_INVALID, "option too short");
            return null;
        }
        long nameLength = Integer.toUnsignedLong(data.getInt());
        if (nameLength > data.remaining() - 2) {
            replyError(option, Nbd.REP_ERR_INVALID, "export name length " + nameLength + " exceeds the option");
            return null;
        }
        String name = utf8(data, (int) nameLength);
        int count = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * count) {
            replyError(option, Nbd.REP_ERR_INVALID, "information request count " + count
                    + " does not match the option length");
            return null;
        }
        boolean wantName = false;
        boolean wantDescription = false;
        for (int i = 0; i < count; i++) {
            int type = Short.toUnsignedInt(data.getShort());
            wantName |= type == Nbd.INFO_NAME;
            wantDescription |= type == Nbd.INFO_DESCRIPTION;
        }
        NbdExport e = name == null ? null : exports.get(name);
        if (e == null) {
            replyError(option, Nbd.REP_ERR_UNKNOWN, "export '" + (name == null ? "" : name) + "' not present");
            return null;
        }
        ByteBuffer info = ByteBuffer.allocate(12);
        info.putShort((short) Nbd.INFO_EXPORT).putLong(e.drive().length())
                .putShort((short) NbdSession.transmissionFlags(e, structured)).flip();
        reply(option, Nbd.REP_INFO, info);
        if (wantName) {
            byte[] n = e.name().getBytes(StandardCharsets.UTF_8);
            reply(option, Nbd.REP_INFO, ByteBuffer.allocate(2 + n.length).putShort((short) Nbd.INFO_NAME).put(n)
                    .flip());
        }
        if (wantDescription && e.description() != null) {
            byte[] d = e.description().getBytes(StandardCharsets.UTF_8);
            reply(option, Nbd.REP_INFO, ByteBuffer.allocate(2 + d.length).putShort((short) Nbd.INFO_DESCRIPTION)
                    .put(d).flip());
        }
        // Always sent: minimum 1 (any alignment works, the drive bounces), preferred 4 KiB, maximum payload.
        int preferred = Math.max(4096, e.drive().root().capabilities().requestAlignment());
        ByteBuffer bs = ByteBuffer.allocate(14);
        bs.putShort((short) Nbd.INFO_BLOCK_SIZE).putInt(1).putInt(preferred).putInt(Nbd.MAX_PAYLOAD).flip();
        reply(option, Nbd.REP_INFO, bs);
        reply(option, Nbd.REP_ACK, null);
        return e;
    }

    /** NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
    private void metaContext(int option, ByteBuffer data) throws IOException {
        if (!structured) {
            replyError(option, Nbd.REP_ERR_INVALID, "structured replies must be negotiated first");
            return;
        }
        if (data.remaining() < 8) {
            replyError(option, Nbd.REP_ERR_INVALID, "option too short");
            return;
        }
        long nameLength = Integer.toUnsignedLong(data.getInt());
        if (nameLength > data.remaining() - 4) {
            replyError(option, Nbd.REP_ERR_INVALID, "export name length exceeds the option");
            return;
        }
        String name = utf8(data, (int) nameLength);
        long queries = Integer.toUnsignedLong(data.getInt());
        List<String> asked = new ArrayList<>();
        for (long i = 0; i < queries; i++) {
            if (data.remaining() < 4) {
                replyError(option, Nbd.REP_ERR_INVALID, "query count exceeds the option");
                return;
            }
            long qlen = Integer.toUnsignedLong(data.getInt());
            if (qlen > data.remaining()) {
                replyError(option, Nbd.REP_ERR_INVALID, "query length exceeds the option");
                return;
            }
            String q = utf8(data, (int) qlen);
            if (q == null) {
                replyError(option, Nbd.REP_ERR_INVALID, "query is not valid UTF-8");
                return;
            }
            asked.add(q);
        }
        if (data.hasRemaining()) {
            replyError(option, Nbd.REP_ERR_INVALID, "option has trailing data");
            return;
        }
        NbdExport e = name == null ? null : exports.get(name);
        if (e == null) {
            replyError(option, Nbd.REP_ERR_UNKNOWN, "export '" + (name == null ? "" : name) + "' not present");
            return;
        }
        List<NbdSession.MetaContext> available = new ArrayList<>();
        available.add(new NbdSession.MetaContext(0, Nbd.CONTEXT_BASE_ALLOCATION));
        if (e.allocationDepth()) {
            available.add(new NbdSession.MetaContext(1, Nbd.CONTEXT_ALLOCATION_DEPTH));
        }
        List<NbdSession.MetaContext> chosen = new ArrayList<>();
        for (NbdSession.MetaContext c : available) {
            boolean match = option == Nbd.OPT_LIST_META_CONTEXT && asked.isEmpty();
            for (String q : asked) {
                // LIST accepts a namespace ("base:", "qemu:") as a wildcard; SET takes only full names.
                match |= q.equals(c.name())
                        || option == Nbd.OPT_LIST_META_CONTEXT && q.endsWith(":") && c.name().startsWith(q);
            }
            if (match && !chosen.contains(c)) {
                chosen.add(c);
            }
        }
        for (NbdSession.MetaContext c : chosen) {
            byte[] n = c.name().getBytes(StandardCharsets.UTF_8);
            reply(option, Nbd.REP_META_CONTEXT, ByteBuffer.allocate(4 + n.length).putInt(c.id()).put(n).flip());
        }
        if (option == Nbd.OPT_SET_META_CONTEXT) {
            contexts = List.copyOf(chosen);
            contextExport = e.name();
        }
        reply(option, Nbd.REP_ACK, null);
    }

    private void reply(int option, int type, ByteBuffer data) throws IOException {
        int n = data == null ? 0 : data.remaining();
        ByteBuffer h = ByteBuffer.allocate(20);
        h.putLong(Nbd.OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(n).flip();
        t.writeFully(h);
        if (data != null) {
            t.writeFully(data);
        }
    }

    private void replyError(int option, int type, String message) throws IOException {
        reply(option, type, ByteBuffer.wrap(message.getBytes(StandardCharsets.UTF_8)));
    }


    /** Decodes {@code n} bytes as strict UTF-8; null when they are not valid UTF-8 or too long. */
    private static String utf8(ByteBuffer data, int n) {
        ByteBuffer slice = data.slice(data.position(), n);
        data.position(data.position() + n);
        if (n > Nbd.MAX_STRING) {
            return null;
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(slice).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
