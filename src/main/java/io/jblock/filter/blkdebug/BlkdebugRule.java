package io.jblock.filter.blkdebug;

import io.jblock.block.DebugEvent;

/**
 * One blkdebug rule: when {@link #event} is reported while the node is in
 * {@link #state} (0: any state), the rule acts.
 *
 * <ul>
 *   <li>inject-error: the rule becomes active, and the next request of a
 *       matching kind (and covering {@link #offset}, unless -1) fails with
 *       {@link #errno}; with {@link #once} the rule is then deleted.</li>
 *   <li>set-state: the node moves to {@link #newState}.</li>
 *   <li>suspend (qemu-io's {@code break}): the request that reported the
 *       event stops until {@code resume TAG}; the rule is deleted when hit.</li>
 * </ul>
 */
record BlkdebugRule(Action action, DebugEvent event, long state, int errno, boolean once, boolean immediately,
                    long offset, int ioTypeMask, long newState, String tag) {

    enum Action { INJECT_ERROR, SET_STATE, SUSPEND }

    static BlkdebugRule injectError(DebugEvent event, long state, int errno, boolean once, boolean immediately,
                                    long offset, int ioTypeMask) {
        return new BlkdebugRule(Action.INJECT_ERROR, event, state, errno, once, immediately, offset, ioTypeMask,
                0, null);
    }

    static BlkdebugRule setState(DebugEvent event, long state, long newState) {
        return new BlkdebugRule(Action.SET_STATE, event, state, 0, false, false, -1, 0, newState, null);
    }

    static BlkdebugRule suspend(DebugEvent event, String tag) {
        return new BlkdebugRule(Action.SUSPEND, event, 0, 0, false, false, -1, 0, 0, tag);
    }

    /** Whether an active inject-error rule applies to a request of {@code type} over [offset, offset+bytes). */
    boolean matches(BlkdebugIoType type, long requestOffset, long bytes) {
        boolean where = offset == -1 || (bytes > 0 && offset >= requestOffset && offset - requestOffset < bytes);
        return where && (ioTypeMask & type.bit()) != 0;
    }
}
