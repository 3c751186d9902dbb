<?php

namespace Scada\Broadcasting\Tests\Support;

use PHPUnit\Framework\TestCase;

/**
 * Base for the `stack` suite: one deployed stack (Stack: the compose
 * services with SCADA_STACK=external, local processes otherwise) shared by a
 * test class, and a temp directory per test, kept when the test failed.
 */
abstract class StackTestCase extends TestCase
{
    protected static ?Stack $stack = null;
    private static string $stackDir;
    protected string $dir;

    public static function setUpBeforeClass(): void
    {
        self::$stackDir = Processes::tempDir('stack');
        self::$stack = new Stack(self::$stackDir);
    }

    public static function tearDownAfterClass(): void
    {
        self::$stack?->stop();
        self::$stack = null;
        Processes::removeDir(self::$stackDir);
    }

    protected function setUp(): void
    {
        $this->dir = Processes::tempDir('stack-test');
    }

    protected function tearDown(): void
    {
        if (!PhpUnitCompat::failed($this)) {
            Processes::removeDir($this->dir);
        }
    }
}
