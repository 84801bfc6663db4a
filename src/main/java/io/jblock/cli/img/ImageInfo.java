package io.jblock.cli.img;

import io.jblock.cli.QemuText;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@code info} reports about one image (QEMU's ImageInfo), and its two
 * renderings: qemu-img's human text and its JSON.
 *
 * @param filename    the name shown after "image:"
 * @param format      the format driver's name
 * @param virtualSize the size the guest sees, in bytes
 * @param actualSize  bytes allocated on the host, -1 when unknown ("unavailable")
 * @param clusterSize the format's allocation unit, 0 when it has none
 * @param dirty       whether the image was not closed cleanly
 * @param snapshots   the internal snapshots (none for formats without them)
 * @param backing     the backing file the image records, or null when it names none
 */
record ImageInfo(String filename, String format, long virtualSize, long actualSize, long clusterSize,
                 boolean dirty, Map<String, Object> formatSpecific,
                 java.util.List<io.jblock.format.qcow2.Qcow2InternalSnapshots.Info> snapshots, Backing backing) {
    /**
     * The backing file an image records (QEMU's ImageInfo backing-filename,
     * full-backing-filename and backing-filename-format).
     *
     * @param name   the name as the image stores it
     * @param full   that name made absolute against the image's folder, as
     *               QEMU's bdrv_get_full_backing_filename; null when it cannot be
     * @param format the recorded format, or null
     */
    record Backing(String name, String full, String format) {
    }

    /** An image with no backing file. */
    ImageInfo(String filename, String format, long virtualSize, long actualSize, long clusterSize,
              boolean dirty, Map<String, Object> formatSpecific,
              java.util.List<io.jblock.format.qcow2.Qcow2InternalSnapshots.Info> snapshots) {
        this(filename, format, virtualSize, actualSize, clusterSize, dirty, formatSpecific, snapshots, null);
    }

    /** An image without internal snapshots. */
    ImageInfo(String filename, String format, long virtualSize, long actualSize, long clusterSize,
              boolean dirty, Map<String, Object> formatSpecific) {
        this(filename, format, virtualSize, actualSize, clusterSize, dirty, formatSpecific, java.util.List.of());
    }

    /** The fields in QAPI order (the order QEMU adds them, which breaks ties in its JSON member order). */
    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("filename", filename);
        m.put("format", format);
        m.put("dirty-flag", dirty);
        if (actualSize >= 0) {
            m.put("actual-size", actualSize);
        }
        m.put("virtual-size", virtualSize);
        if (clusterSize > 0) {
            m.put("cluster-size", clusterSize);
        }
        putBackingJson(m);
        if (!snapshots.isEmpty()) {
            // QAPI SnapshotInfo, in its field order.
            java.util.List<Object> list = new java.util.ArrayList<>();
            for (var sn : snapshots) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("id", sn.id());
                e.put("name", sn.name());
                e.put("vm-state-size", sn.vmStateSize());
                e.put("date-sec", sn.dateSeconds());
                e.put("date-nsec", (long) sn.dateNanos());
                e.put("vm-clock-sec", Long.divideUnsigned(sn.vmClockNanos(), 1_000_000_000L));
                e.put("vm-clock-nsec", Long.remainderUnsigned(sn.vmClockNanos(), 1_000_000_000L));
                if (sn.icount() != -1) {
                    e.put("icount", sn.icount());
                }
                list.add(e);
            }
            m.put("snapshots", list);
        }
        if (!formatSpecific.isEmpty()) {
            Map<String, Object> spec = new LinkedHashMap<>();
            spec.put("type", format);
            spec.put("data", formatSpecific);
            m.put("format-specific", spec);
        }
        return m;
    }

    /** qemu-img's human text for this image, each line ending in a newline. */
    String toHuman() {
        StringBuilder sb = new StringBuilder();
        sb.append("image: ").append(filename).append('\n');
        sb.append("file format: ").append(format).append('\n');
        sb.append("virtual size: ").append(QemuText.sizeToStr(virtualSize)).append(" (").append(virtualSize)
                .append(" bytes)\n");
        sb.append("disk size: ").append(actualSize >= 0 ? QemuText.sizeToStr(actualSize) : "unavailable")
                .append('\n');
        if (clusterSize > 0) {
            sb.append("cluster_size: ").append(clusterSize).append('\n');
        }
        if (dirty) {
            sb.append("cleanly shut down: no\n");
        }
        appendBackingHuman(sb);
        if (!snapshots.isEmpty()) {
            sb.append(SnapshotCommand.list(snapshots));
        }
        if (!formatSpecific.isEmpty()) {
            // bdrv_image_info_specific_dump: indented by 4, '-' in keys printed as ' '.
            sb.append("Format specific information:\n");
            for (Map.Entry<String, Object> e : formatSpecific.entrySet()) {
                dumpMember(sb, 1, e.getKey().replace('-', ' '), e.getValue());
            }
        }
        return sb.toString();
    }

    /** QEMU's dump_qobject: composite values (lists, dicts) on the lines below, indented by 4 more. */
    private static void dumpMember(StringBuilder sb, int level, String label, Object value) {
        boolean composite = value instanceof Map || value instanceof java.util.List;
        sb.append(" ".repeat(level * 4)).append(label).append(':').append(composite ? '\n' : ' ');
        switch (value) {
            case java.util.List<?> list -> {
                for (int i = 0; i < list.size(); i++) {
                    dumpMember(sb, level + 1, "[" + i + "]", list.get(i));
                }
            }
            case Map<?, ?> map -> {
                for (Map.Entry<?, ?> e : QemuJson.qdictOrder(map)) {
                    dumpMember(sb, level + 1, ((String) e.getKey()).replace('-', ' '), e.getValue());
                }
            }
            default -> sb.append(value).append('\n');
        }
    }

    /** The backing fields, in QAPI order (after cluster-size, before snapshots). */
    private void putBackingJson(Map<String, Object> m) {
        if (backing == null) {
            return;
        }
        m.put("backing-filename", backing.name());
        if (backing.full() != null) {
            m.put("full-backing-filename", backing.full());
        }
        if (backing.format() != null) {
            m.put("backing-filename-format", backing.format());
        }
    }

    /** bdrv_image_info_dump's backing lines: the full name only when it differs from the stored one. */
    private void appendBackingHuman(StringBuilder sb) {
        if (backing == null) {
            return;
        }
        sb.append("backing file: ").append(backing.name());
        if (backing.full() == null) {
            sb.append(" (cannot determine actual path)");
        } else if (!backing.full().equals(backing.name())) {
            sb.append(" (actual path: ").append(backing.full()).append(')');
        }
        sb.append('\n');
        if (backing.format() != null) {
            sb.append("backing file format: ").append(backing.format()).append('\n');
        }
    }
}
