package io.jblock.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, synchronous NBD client: the handshake options and one request at
 * a time. Used by {@code jblock nbd -L} and by tests that need a client that
 * does exactly what they say (including malformed traffic, through
 * {@link #transport()}).
 */
public final class NbdClient implements AutoCloseable {
    private final NbdTransport t;
    private final int handshakeFlags;
    private boolean structured;

    /** One entry of NBD_OPT_LIST. */
    public record ExportEntry(String name, String description) {
    }

    /** What NBD_OPT_INFO / NBD_OPT_GO said of an export. */
    public record ExportInfo(long size, int flags, String name, String description, int minBlock, int preferredBlock,
                             int maxBlock) {
    }

    /** An option reply that was an error: its type and message. */
    public static final class OptionError extends IOException {
        public final int type;

        OptionError(int type, String message) {
            super(message);
            this.type = type;
        }
    }

    /** A reply chunk or simple reply, decoded. */
    public record Reply(long cookie, int error, int flags, int type, byte[] payload) {
    }

    private NbdClient(NbdTransport t) throws IOException {
        this.t = t;
        ByteBuffer hello = ByteBuffer.allocate(18);
        t.readFully(hello);
        if (hello.getLong(0) != Nbd.NBDMAGIC || hello.getLong(8) != Nbd.IHAVEOPT) {
            throw new IOException("not a newstyle NBD server");
        }
        handshakeFlags = Short.toUnsignedInt(hello.getShort(16));
    }

    public static NbdClient connect(SocketAddress address) throws IOException {
        SocketChannel ch = address instanceof UnixDomainSocketAddress
                ? SocketChannel.open(StandardProtocolFamily.UNIX) : SocketChannel.open();
        try {
            ch.connect(address);
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        return new NbdClient(NbdTransport.of(ch));
    }

    public static NbdClient connectUnix(Path socket) throws IOException {
        return connect(UnixDomainSocketAddress.of(socket));
    }

    public static NbdClient connectTcp(String host, int port) throws IOException {
        return connect(new InetSocketAddress(host, port));
    }

    public int handshakeFlags() {
        return handshakeFlags;
    }

    public NbdTransport transport() {
        return t;
    }

    /** Sends the client flags (normally FIXED_NEWSTYLE | NO_ZEROES). */
    public void sendClientFlags(int flags) throws IOException {
        t.writeFully(ByteBuffer.allocate(4).putInt(flags).flip());
    }

    public void sendOption(int option, ByteBuffer data) throws IOException {
        int n = data == null ? 0 : data.remaining();
        t.writeFully(ByteBuffer.allocate(16).putLong(Nbd.IHAVEOPT).putInt(option).putInt(n).flip());
        if (data != null) {
            t.writeFully(data);
        }
    }

    /** One option reply: {type, payload}; the option must be the one asked. */
    public Map.Entry<Integer, ByteBuffer> readOptionReply(int option) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(20);
        t.readFully(h);
        if (h.getLong(0) != Nbd.OPTION_REPLY_MAGIC || h.getInt(8) != option) {
            throw new IOException("bad option reply");
        }
        int type = h.getInt(12);
        long len = Integer.toUnsignedLong(h.getInt(16));
        if (len > Nbd.MAX_OPTION_LENGTH) {
            throw new IOException("option reply too long: " + len);
        }
        ByteBuffer data = ByteBuffer.allocate((int) len);
        t.readFully(data);
        data.flip();
        if (type < 0) {
            throw new OptionError(type, StandardCharsets.UTF_8.decode(data).toString());
        }
        return Map.entry(type, data);
    }

    public List<ExportEntry> list() throws IOException {
        sendOption(Nbd.OPT_LIST, null);
        List<ExportEntry> out = new ArrayList<>();
        while (true) {
            var r = readOptionReply(Nbd.OPT_LIST);
            if (r.getKey() == Nbd.REP_ACK) {
                return out;
            }
            ByteBuffer d = r.getValue();
            int n = d.getInt();
            String name = str(d, n);
            out.add(new ExportEntry(name, str(d, d.remaining())));
        }
    }

    public void structuredReplies() throws IOException {
        sendOption(Nbd.OPT_STRUCTURED_REPLY, null);
        readOptionReply(Nbd.OPT_STRUCTURED_REPLY);
        structured = true;
    }

    /** NBD_OPT_INFO (go = false) or NBD_OPT_GO, asking for name, description and block size. */
    public ExportInfo info(String name, boolean go) throws IOException {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 6);
        b.putInt(n.length).put(n).putShort((short) 3).putShort((short) Nbd.INFO_NAME)
                .putShort((short) Nbd.INFO_DESCRIPTION).putShort((short) Nbd.INFO_BLOCK_SIZE).flip();
        int option = go ? Nbd.OPT_GO : Nbd.OPT_INFO;
        sendOption(option, b);
        long size = -1;
        int flags = 0;
        String gotName = null;
        String desc = null;
        int min = 0;
        int pref = 0;
        int max = 0;
        while (true) {
            var r = readOptionReply(option);
            if (r.getKey() == Nbd.REP_ACK) {
                return new ExportInfo(size, flags, gotName, desc, min, pref, max);
            }
            ByteBuffer d = r.getValue();
            switch (d.getShort()) {
                case Nbd.INFO_EXPORT -> {
                    size = d.getLong();
                    flags = Short.toUnsignedInt(d.getShort());
                }
                case Nbd.INFO_NAME -> gotName = str(d, d.remaining());
                case Nbd.INFO_DESCRIPTION -> desc = str(d, d.remaining());
                case Nbd.INFO_BLOCK_SIZE -> {
                    min = d.getInt();
                    pref = d.getInt();
                    max = d.getInt();
                }
                default -> { }
            }
        }
    }

    /** NBD_OPT_LIST_META_CONTEXT or NBD_OPT_SET_META_CONTEXT: the contexts by name, with their ids. */
    public Map<String, Integer> metaContexts(boolean set, String export, List<String> queries) throws IOException {
        byte[] n = export.getBytes(StandardCharsets.UTF_8);
        int len = 8 + n.length;
        for (String q : queries) {
            len += 4 + q.getBytes(StandardCharsets.UTF_8).length;
        }
        ByteBuffer b = ByteBuffer.allocate(len);
        b.putInt(n.length).put(n).putInt(queries.size());
        for (String q : queries) {
            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
            b.putInt(qb.length).put(qb);
        }
        int option = set ? Nbd.OPT_SET_META_CONTEXT : Nbd.OPT_LIST_META_CONTEXT;
        sendOption(option, b.flip());
        Map<String, Integer> out = new LinkedHashMap<>();
        while (true) {
            var r = readOptionReply(option);
            if (r.getKey() == Nbd.REP_ACK) {
                return out;
            }
            ByteBuffer d = r.getValue();
            int id = d.getInt();
            out.put(str(d, d.remaining()), id);
        }
    }

    public void abort() throws IOException {
        sendOption(Nbd.OPT_ABORT, null);
        try {
            readOptionReply(Nbd.OPT_ABORT);
        } catch (IOException ignored) {
            // The server may close at once; that is allowed.
        }
    }

    // ------------------------------------------------------------------ transmission

    /** Sends one request header (and payload for writes). */
    public void sendRequest(int flags, int type, long cookie, long offset, int length, ByteBuffer payload)
            throws IOException {
        ByteBuffer h = ByteBuffer.allocate(28);
        h.putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(cookie).putLong(offset)
                .putInt(length).flip();
        t.writeFully(h);
        if (payload != null) {
            t.writeFully(payload);
        }
    }

    /**
     * Reads one simple reply or structured chunk. {@code readLength} is the
     * data length that follows a successful simple reply to a READ (0 otherwise).
     */
    public Reply readReply(int readLength) throws IOException {
        ByteBuffer m = ByteBuffer.allocate(4);
        t.readFully(m);
        int magic = m.getInt(0);
        if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
            ByteBuffer h = ByteBuffer.allocate(12);
            t.readFully(h);
            int error = h.getInt(0);
            byte[] data = new byte[error == 0 ? readLength : 0];
            t.readFully(ByteBuffer.wrap(data));
            return new Reply(h.getLong(4), error, Nbd.REPLY_FLAG_DONE, -1, data);
        }
        if (magic != Nbd.STRUCTURED_REPLY_MAGIC) {
            throw new IOException("bad reply magic 0x" + Integer.toHexString(magic));
        }
        ByteBuffer h = ByteBuffer.allocate(16);
        t.readFully(h);
        int flags = Short.toUnsignedInt(h.getShort(0));
        int type = Short.toUnsignedInt(h.getShort(2));
        long cookie = h.getLong(4);
        long len = Integer.toUnsignedLong(h.getInt(12));
        if (len > Nbd.MAX_PAYLOAD + 64L) {
            throw new IOException("reply chunk too long: " + len);
        }
        byte[] payload = new byte[(int) len];
        t.readFully(ByteBuffer.wrap(payload));
        int error = 0;
        if (type == Nbd.REPLY_TYPE_ERROR || type == Nbd.REPLY_TYPE_ERROR_OFFSET) {
            error = ByteBuffer.wrap(payload).getInt();
        }
        return new Reply(cookie, error, flags, type, payload);
    }

    /** Reads {@code length} bytes at {@code offset}; throws with the NBD error on failure. */
    public byte[] read(long offset, int length) throws IOException {
        sendRequest(0, Nbd.CMD_READ, 1, offset, length, null);
        byte[] out = new byte[length];
        while (true) {
            Reply r = readReply(structured ? 0 : length);
            if (r.error() != 0) {
                throw new IOException("read failed with NBD error " + r.error());
            }
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            if (!structured) {
                return r.payload();
            }
            if (r.type() == Nbd.REPLY_TYPE_OFFSET_DATA) {
                long o = p.getLong();
                p.get(out, (int) (o - offset), p.remaining());
            }
            // OFFSET_HOLE: the array is already zero there.
            if ((r.flags() & Nbd.REPLY_FLAG_DONE) != 0) {
                return out;
            }
        }
    }

    /** Writes and returns the NBD error (0 on success). */
    public int write(long offset, byte[] data, int flags) throws IOException {
        sendRequest(flags, Nbd.CMD_WRITE, 2, offset, data.length, ByteBuffer.wrap(data));
        return readReply(0).error();
    }

    /** Sends a command without payload and returns its NBD error (0 on success). */
    public int command(int type, int flags, long offset, int length) throws IOException {
        sendRequest(flags, type, 3, offset, length, null);
        Reply r;
        do {
            r = readReply(0);
        } while ((r.flags() & Nbd.REPLY_FLAG_DONE) == 0);
        return r.error();
    }

    public int flush() throws IOException {
        return command(Nbd.CMD_FLUSH, 0, 0, 0);
    }

    public void disconnect() throws IOException {
        sendRequest(0, Nbd.CMD_DISC, 4, 0, 0, null);
    }

    @Override
    public void close() {
        t.close();
    }

    private static String str(ByteBuffer d, int n) {
        byte[] b = new byte[n];
        d.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
