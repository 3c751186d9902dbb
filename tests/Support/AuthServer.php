<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A channel authorization endpoint served by `php -S`, signing with the
 * extension's PusherSigner (tests/bin/auth-endpoint.php).
 */
final class AuthServer
{
    public readonly int $port;
    private Process $process;

    public function __construct(string $dir, array $env = [])
    {
        $this->port = Processes::freePort();
        $this->process = new Process(
            [PHP_BINARY, ...Processes::extensionArgs(), '-S', "127.0.0.1:{$this->port}", Processes::root() . '/tests/bin/auth-endpoint.php'],
            "$dir/auth-server.log",
            array_merge(['PUSHER_APP_KEY' => Sockudo::KEY, 'PUSHER_APP_SECRET' => Sockudo::SECRET], $env)
        );
        Processes::waitFor(fn() => Processes::tcpOpen($this->port), 10, 'php -S auth endpoint');
    }

    public function url(string $path = '/broadcasting/auth'): string
    {
        return "http://127.0.0.1:{$this->port}$path";
    }

    /** POSTs a form like pusher-js does; returns [status, body]. */
    public function post(array $form, string $path = '/broadcasting/auth'): array
    {
        $ctx = stream_context_create(['http' => ['method' => 'POST', 'ignore_errors' => true,
            'header' => "Content-Type: application/x-www-form-urlencoded\r\n", 'content' => http_build_query($form)]]);
        $body = file_get_contents($this->url($path), false, $ctx);
        preg_match('{HTTP/\S+ (\d+)}', $http_response_header[0] ?? '', $m);
        return [(int)($m[1] ?? 0), $body];
    }

    public function __destruct()
    {
        $this->process->kill();
    }
}
