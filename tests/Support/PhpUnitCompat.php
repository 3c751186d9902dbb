<?php

namespace Scada\Broadcasting\Tests\Support;

use PHPUnit\Framework\TestCase;

/**
 * The few PHPUnit APIs the suite needs that changed between PHPUnit 9.6
 * (Debian 12), 11.5 (Debian 13) and 13.4 (Debian sid): one suite runs
 * unchanged on all three.
 */
final class PhpUnitCompat
{
    /** True when the running test failed or errored (called from tearDown). */
    public static function failed(TestCase $test): bool
    {
        if (method_exists($test, 'status')) { // PHPUnit 10+: hasFailed() was removed
            $status = $test->status();

            return $status->isFailure() || $status->isError();
        }

        return $test->hasFailed();
    }

    /** The installed PHPUnit's major version. */
    public static function major(): int
    {
        return (int) \PHPUnit\Runner\Version::series();
    }
}
