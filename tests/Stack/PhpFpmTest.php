<?php

namespace Scada\Broadcasting\Tests\Stack;

use Scada\Broadcasting\Tests\Support\PhpUnitCompat;
use Scada\Broadcasting\Tests\Support\Process;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\StackTestCase;

/**
 * The extension loaded by php-fpm, as web requests run it: a real FastCGI
 * request (cgi-fcgi, Debian's libfcgi-bin) to a php-fpm worker that
 * broadcasts, and the event observed in Redis. In Docker (SCADA_STACK=external)
 * the php container's FPM (PHP_FPM_ADDR) serves it; otherwise this test
 * starts the machine's php-fpm with the built extension.
 */
final class PhpFpmTest extends StackTestCase
{
    private ?Process $fpm = null;

    protected function tearDown(): void
    {
        $this->fpm?->stop();
        if (PhpUnitCompat::failed($this) && $this->fpm !== null) {
            fwrite(STDERR, "\n--- php-fpm log ---\n" . substr($this->fpm->output(), -3000) . "\n");
        }
        parent::tearDown();
    }

    public function test_php_fpm_workers_broadcast_through_the_extension(): void
    {
        $address = self::$stack->external ? (string) getenv('PHP_FPM_ADDR') : $this->startFpm();
        $this->assertNotSame('', $address, 'SCADA_STACK=external needs PHP_FPM_ADDR (the php container\'s FPM)');
        $channel = 'fpm-' . bin2hex(random_bytes(4));
        $sub = self::$stack->subscribe($this->dir, "laravel_database_$channel");

        $answers = [];
        for ($i = 1; $i <= 4; $i++) {
            $answers[] = $answer = $this->request($address, ['channel' => $channel, 'id' => $i]);
            $this->assertSame('fpm-fcgi', $answer['sapi'], 'served by php-fpm');
            $this->assertTrue($answer['extension'], 'php-fpm loads the extension');
            $this->assertNull($answer['error']);
            $this->assertTrue($answer['accepted']);
        }
        $messages = $sub->waitFor(4, 15);
        $ids = [];
        foreach ($messages as $m) {
            $message = json_decode($m['message'], true);
            $this->assertSame('fpm.request', $message['event']);
            $this->assertSame('fpm-fcgi', $message['data']['sapi']);
            $ids[] = $message['data']['id'];
        }
        sort($ids);
        $this->assertSame([1, 2, 3, 4], $ids, 'every request\'s event arrived once');
        fwrite(STDERR, sprintf("\nSTACK fpm: php-fpm %s, %d requests from %d worker(s), %d events in Redis\n",
            $answers[0]['php'], count($answers), count(array_unique(array_column($answers, 'pid'))), count($messages)));
    }

    /** php-fpm of this PHP version, 2 static workers, the built extension. */
    private function startFpm(): string
    {
        $binary = null;
        foreach (['php-fpm' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION, 'php-fpm'] as $name) {
            foreach (['/usr/sbin/', '/usr/local/sbin/'] as $dir) {
                if (is_executable($dir . $name)) {
                    $binary ??= $dir . $name;
                }
            }
        }
        $this->assertNotNull($binary, 'php-fpm ' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION . ' is not installed (tests/bin/install-deps.sh installs it)');
        $port = Processes::freePort();
        $conf = "$this->dir/fpm.conf";
        file_put_contents($conf, "[global]\npid = $this->dir/fpm.pid\nerror_log = /proc/self/fd/2\ndaemonize = no\n\n"
            . "[www]\nlisten = 127.0.0.1:$port\npm = static\npm.max_children = 2\nclear_env = no\ncatch_workers_output = yes\n");
        $args = [$binary, '--nodaemonize', '--fpm-config', $conf, ...Processes::extensionArgs()];
        if (function_exists('posix_geteuid') && posix_geteuid() === 0) {
            $args[] = '--allow-to-run-as-root';
        }
        $this->fpm = new Process($args, "$this->dir/fpm.log", ['SCADA_SIDECAR_SOCKET' => self::$stack->socket()]);
        Processes::waitFor(fn () => Processes::tcpOpen($port), 15, "php-fpm on port $port");

        return "127.0.0.1:$port";
    }

    /** One FastCGI request through cgi-fcgi; the decoded JSON body. */
    private function request(string $address, array $query): array
    {
        $script = Processes::root() . '/tests/bin/fpm-broadcast.php';
        $env = ['SCRIPT_FILENAME' => $script, 'SCRIPT_NAME' => '/fpm-broadcast.php', 'REQUEST_METHOD' => 'GET', 'QUERY_STRING' => http_build_query($query)];
        $cgi = new Process(['cgi-fcgi', '-bind', '-connect', $address], "$this->dir/cgi-fcgi-" . bin2hex(random_bytes(3)) . '.log', $env);
        $this->assertSame(0, $cgi->wait(20), 'cgi-fcgi: ' . $cgi->output());
        [, $body] = explode("\r\n\r\n", $cgi->output(), 2) + [1 => ''];

        return json_decode($body, true) ?? $this->fail('not JSON from php-fpm: ' . $cgi->output());
    }
}
