<?php
// A minimal channel authorization endpoint (`php -S` router) using the
// extension's PusherSigner, the way an app without Laravel would write it.
// Rules for the tests: private-denied-* is refused (403); presence channels
// get the member from the X-User header (default user 42, "Operator").
$signer = new Scada\Broadcasting\PusherSigner(getenv('PUSHER_APP_KEY'), getenv('PUSHER_APP_SECRET'), getenv('PUSHER_ENCRYPTION_MASTER_KEY_BASE64') ?: null);
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: application/json');
header('Access-Control-Allow-Origin: *');
try {
    if ($path === '/broadcasting/user-auth') {
        echo $signer->authenticateUser($_POST['socket_id'] ?? '', ['id' => '42', 'name' => 'Operator / Shift A']);
        return;
    }
    $channel = $_POST['channel_name'] ?? '';
    if (str_starts_with($channel, 'private-denied-')) {
        http_response_code(403);
        echo json_encode(['message' => 'forbidden']);
        return;
    }
    $presence = str_starts_with($channel, 'presence-')
        ? ['user_id' => $_SERVER['HTTP_X_USER'] ?? '42', 'user_info' => ['name' => 'Operator Ü/1', 'role' => 'operator']]
        : null;
    echo $signer->authorizeChannel($_POST['socket_id'] ?? '', $channel, $presence);
} catch (InvalidArgumentException $e) {
    http_response_code(400);
    echo json_encode(['message' => $e->getMessage()]);
}
