<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;

/**
 * BROADCAST_DRIVER=scada in a real Laravel 8 app: existing ShouldBroadcast
 * and ShouldBroadcastNow events, queued jobs run by real `queue:work` and
 * `queue:listen` processes, the facade, and the seed's event.
 */
final class LaravelDriverTest extends IntegrationTestCase
{
    public function test_should_broadcast_now_events_reach_redis_and_pusher_js_through_the_scada_driver(): void
    {
        $this->startPusherStack(withRedis: true);
        $sub = $this->subscribe();
        $client = $this->pusherClient(['alarms']);
        $app = $this->laravel();

        [$code, $out] = $app->artisan(['test:broadcast', 'alarm', '--plant=2', '--socket=1234.5678']);
        $this->assertSame(0, $code, $out);

        $redis = $sub->waitFor(2);
        $channels = array_column($redis, 'channel');
        sort($channels);
        $this->assertSame(['laravel_database_alarms', 'laravel_database_private-plant.2'], $channels);
        // Exactly what Laravel's RedisBroadcaster publishes for this event (socket from toOthers/InteractsWithSockets).
        $this->assertSame('{"event":"sensor.alarm","data":{"plant":2,"level":"high","path":"line\/3","socket":"1234.5678"},"socket":"1234.5678"}', $redis[0]['message']);
        [$e] = $client->waitFor(1);
        $this->assertSame('sensor.alarm', $e['event']);
        $this->assertSame(['plant' => 2, 'level' => 'high', 'path' => 'line/3'], $e['data']);
    }

    public function test_queued_broadcast_events_are_delivered_by_a_real_queue_worker(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_orders');
        $app = $this->laravel();
        $worker = $app->start(['queue:work', '--sleep=0.1']);
        [$code, $out] = $app->artisan(['test:broadcast', 'orders', '--count=20']);
        $this->assertSame(0, $code, $out);

        $messages = $sub->waitFor(20, 20);
        $ids = array_map(fn ($m) => json_decode($m['message'], true)['data']['order']['id'], $messages);
        sort($ids);
        $this->assertSame(range(0, 19), $ids);
        $first = json_decode($messages[0]['message'], true);
        $this->assertSame('App\\Events\\OrderShipped', $first['event']);
        $this->assertSame('ü/ß', $first['data']['order']['note']);
        $this->assertSame(0, $worker->stop(), $worker->output());
    }

    public function test_events_a_job_broadcasts_are_handed_over_when_the_job_ends_not_later(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_samples');
        $app = $this->laravel();
        // A 60 s batching window: without the after-job flush nothing would arrive for a minute.
        $worker = $app->start(['queue:work', '--sleep=0.1'], ini: ['scada_broadcast.linger_us' => '60000000']);
        [$code, $out] = $app->artisan(['test:broadcast', 'sample-jobs', '--count=4', '--samples=2500', '--channel=samples']);
        $this->assertSame(0, $code, $out);

        $messages = $sub->waitFor(10000, 20);
        $perJob = array_count_values(array_map(fn ($m) => json_decode($m['message'], true)['data']['data']['job'], $messages));
        ksort($perJob);
        $this->assertSame([0 => 2500, 1 => 2500, 2 => 2500, 3 => 2500], $perJob);
        $this->assertSame(0, $worker->stop(), $worker->output());
        $this->assertCount(10000, $sub->all(0.5), 'nothing twice');
    }

    public function test_a_stopping_worker_hands_over_what_it_holds(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_held');
        // No after-job flush and a 60 s window: only the worker's stop can deliver these.
        $app = $this->laravel(['SCADA_QUEUE_FLUSH_AFTER_JOB' => 'false']);
        $worker = $app->start(['queue:work', '--sleep=0.1'], ini: ['scada_broadcast.linger_us' => '60000000']);
        $app->artisan(['test:broadcast', 'sample-jobs', '--count=1', '--samples=500', '--channel=held']);
        // Laravel 8 prints "Processed:", 9+ "... DONE".
        Processes::waitFor(fn () => preg_match('/Processed:|\bDONE\b/', $worker->output()) === 1, 20, 'the job to run');
        $this->assertSame([], $sub->all(0.5), 'held in the worker');
        $this->assertSame(0, $worker->stop(), $worker->output());
        $this->assertCount(500, $sub->waitFor(500, 10));
    }

    public function test_queue_listen_runs_jobs_in_fresh_processes_that_deliver_everything(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_listen');
        $app = $this->laravel();
        $listener = $app->start(['queue:listen', '--sleep=0', '--timeout=30']);
        $app->artisan(['test:broadcast', 'sample-jobs', '--count=2', '--samples=300', '--channel=listen']);
        $this->assertCount(600, $sub->waitFor(600, 30));
        $listener->stop();
    }

    public function test_the_seed_event_and_the_facade_keep_the_users_echo_listeners_working(): void
    {
        $this->startPusherStack();
        $client = $this->pusherClient(['scada-realtime']);
        // ScadaDataReceived is a queued ShouldBroadcast; this stack has no Redis queue.
        $app = $this->laravel(['QUEUE_CONNECTION' => 'sync']);
        [$code, $out] = $app->artisan(['test:broadcast', 'seed-event']);
        $this->assertSame(0, $code, $out);
        [$e] = $client->waitFor(1);
        $this->assertSame('scada.data.received', $e['event']);
        $this->assertSame(['channel' => 'PLC-1', 'value' => 42.5], $e['data']['data']);
        $this->assertSame('scada-realtime', $e['data']['channel']);
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/', $e['data']['timestamp']);
    }

    public function test_without_the_extension_the_app_fails_with_install_instructions(): void
    {
        $this->startStack();
        [$code, $out] = $this->laravel()->artisan(['list'], withExtension: false);
        $this->assertNotSame(0, $code);
        $this->assertStringContainsString('The scada_broadcast PHP extension is not loaded', $out);
        $this->assertStringContainsString('extension=/path/to/libscada_broadcast.so', $out);
        $this->assertStringContainsString('php -m | grep scada_broadcast', $out);
    }
}
