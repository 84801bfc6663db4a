package io.jblock.options;

import io.jblock.block.BlockDriver;
import io.jblock.format.RawDriver;
import io.jblock.protocol.FileDriver;
import io.jblock.protocol.MemoryDriver;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The drivers jblock knows, by name. */
public final class DriverRegistry {
    private final Map<String, BlockDriver> drivers = new LinkedHashMap<>();

    /** Every built-in driver. */
    public static DriverRegistry standard() {
        DriverRegistry r = new DriverRegistry();
        r.register(new FileDriver());
        r.register(FileDriver.hostDevice());
        r.register(new MemoryDriver());
        r.register(new RawDriver());
        r.register(new io.jblock.format.qcow2.Qcow2Driver());
        r.register(new io.jblock.filter.blkdebug.BlkdebugDriver());
        r.register(new io.jblock.filter.logwrites.LogWritesDriver());
        return r;
    }

    public void register(BlockDriver d) {
        drivers.put(d.name(), d);
    }

    public Optional<BlockDriver> find(String name) {
        return Optional.ofNullable(drivers.get(name));
    }

    /** Names of the format drivers, for {@code --help}'s "Supported formats:". */
    public java.util.List<String> names() {
        return java.util.List.copyOf(drivers.keySet());
    }
}
