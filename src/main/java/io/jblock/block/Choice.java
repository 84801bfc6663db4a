package io.jblock.block;

import java.util.List;
import java.util.Optional;

/**
 * An option value spelled by one or more names. Every enum that users type
 * (cache modes, aio engines, discard and detect-zeroes modes) implements this,
 * and is parsed by {@link #parse}: one table per enum, aliases included, so
 * no documented spelling can be forgotten by a chain of ifs.
 */
public interface Choice {
    /** The spellings accepted for this value; the first is the canonical one. */
    List<String> names();

    /** The canonical spelling. */
    default String canonicalName() {
        return names().getFirst();
    }

    /** The value of {@code type} that has {@code text} among its names, matched exactly as QEMU does. */
    static <E extends Enum<E> & Choice> Optional<E> parse(Class<E> type, String text) {
        for (E e : type.getEnumConstants()) {
            if (e.names().contains(text)) {
                return Optional.of(e);
            }
        }
        return Optional.empty();
    }

    /** Every accepted spelling of {@code type}, for error messages and help. */
    static <E extends Enum<E> & Choice> List<String> allNames(Class<E> type) {
        return java.util.Arrays.stream(type.getEnumConstants()).flatMap(e -> e.names().stream()).toList();
    }
}
