package io.jblock.cli.io;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --object TYPE,id=ID,...}: checked as qemu-io checks it. No jblock
 * format uses an object yet (secrets are for encrypted images), so a valid
 * one is accepted and kept only to refuse a second object with its id.
 */
final class ObjectOption {
    /** What {@code --object help} lists: the types qemu-io 7.2 can create. */
    private static final List<String> USER_CREATABLE = List.of("authz-list", "authz-list-file", "authz-simple",
            "main-loop", "pr-manager-helper", "secret", "secret_keyring", "thread-context", "throttle-group",
            "tls-cipher-suites", "tls-creds-anon", "tls-creds-psk", "tls-creds-x509");
    /** Object types QEMU knows but qemu-io cannot create. */
    private static final Set<String> OTHER_TYPES = Set.of("iothread", "memory-backend-file", "memory-backend-ram",
            "memory-backend-memfd", "memory-backend-epc", "rng-builtin", "rng-egd", "rng-random", "filter-buffer",
            "filter-dump", "filter-mirror", "filter-redirector", "filter-replay", "filter-rewriter", "colo-compare",
            "cryptodev-backend", "cryptodev-backend-builtin", "cryptodev-vhost-user", "dbus-vmstate", "input-linux",
            "input-barrier", "can-bus", "can-host-socketcan", "sev-guest", "s390-pv-guest", "pef-guest",
            "x-remote-object", "x-vfio-user-server", "acpi-generic-initiator");
    private static final Set<String> SECRET_KEYS = Set.of("data", "file", "format", "keyid", "iv", "loaded");

    private final Set<String> ids = new HashSet<>();

    /**
     * Checks one --object; false after printing why it is wrong (the run
     * then ends with status 1). {@code help} prints the creatable types and
     * sets {@code exit}.
     */
    boolean add(IoSession s, String spec, boolean[] exit) {
        LinkedHashMap<String, String> o = new LinkedHashMap<>();
        String[] parts = spec.split(",", 2);
        if (parts[0].contains("=")) {
            QemuOptsText.parse(spec, o, s::warn);
        } else {
            o.put("qom-type", parts[0]);
            if (parts.length > 1) {
                QemuOptsText.parse(parts[1], o, s::warn);
            }
        }
        String type = o.getOrDefault("qom-type", "");
        if (type.equals("help")) {
            s.out.print("List of user creatable objects:\n");
            USER_CREATABLE.forEach(t -> s.out.print("  " + t + "\n"));
            exit[0] = true;
            return true;
        }
        if (!USER_CREATABLE.contains(type)) {
            s.error(OTHER_TYPES.contains(type) ? "invalid object type: " + type
                    : "Parameter 'qom-type' does not accept value '" + type + "'");
            return false;
        }
        String id = o.get("id");
        if (id == null) {
            s.error("Parameter 'id' is missing");
            return false;
        }
        if (type.equals("secret") && !secret(s, o)) {
            return false;
        }
        if (!ids.add(id)) {
            s.error("attempt to add duplicate property '" + id + "' to object (type 'container')");
            return false;
        }
        return true;
    }

    private static boolean secret(IoSession s, Map<String, String> o) {
        for (String key : o.keySet()) {
            if (!key.equals("qom-type") && !key.equals("id") && !SECRET_KEYS.contains(key)) {
                s.error("Parameter '" + key + "' is unexpected");
                return false;
            }
        }
        boolean data = o.containsKey("data");
        boolean file = o.containsKey("file");
        if (data && file) {
            s.error("'file' and 'data' are mutually exclusive");
            return false;
        }
        if (!data && !file) {
            s.error("Either 'file' or 'data' must be provided");
            return false;
        }
        return true;
    }
}
