package dev.starling.discovery;

import java.util.List;

/**
 * Who is alive now. The only view of the cluster the rest of Starling has: nothing else imports
 * the membership library behind it (a static list, Atomix SWIM).
 */
public interface Membership extends AutoCloseable {
    /** This node. */
    Member self();

    /** The live members, this node included, in no particular order. */
    List<Member> members();

    @Override
    default void close() {
    }
}
