<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * For IntegrationTestCase tests that serve the test app with `php -S`:
 * the servers a test started, stopped when it ends.
 */
trait ServesLaravel
{
    /** @var list<Process> servers kept alive until the test ends */
    private array $servers = [];

    /** The test app served with $env (on top of IntegrationTestCase::laravel()'s); its base URL. */
    private function serveApp(array $env): string
    {
        [$server, $url] = $this->laravel($env)->serve();
        $this->servers[] = $server;

        return $url;
    }

    protected function tearDown(): void
    {
        foreach ($this->servers as $server) {
            $server->stop();
        }
        $this->servers = [];
        parent::tearDown();
    }
}
