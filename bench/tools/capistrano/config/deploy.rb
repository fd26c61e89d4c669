# The same steps as bench/tools/bash-deploy.sh, the way a Capistrano user would write them.
# FARM and REPO come from the environment; config/deploy/bench.rb (written by
# bench/compare.sh) lists the servers.
lock "~> 3.17"
set :application, "shop"
set :deploy_to, "/var/www/shop"

# Phase boundaries for bench/compare.sh.
def mark(phase)
  File.open(ENV["MARKS"], "a") { |f| f.puts "#{phase} #{Time.now.to_f}" } if ENV["MARKS"]
end

namespace :bench do
  # N sequential no-op commands on the first app host: compare.sh times N=0 and N=20 to get
  # the cost of one remote command.
  task :noop do
    n = ENV.fetch("N", "0").to_i
    on roles(:app).first do
      n.times { execute :true }
    end
  end

  task :release do
    farm = ENV.fetch("FARM")
    repo = ENV.fetch("REPO")
    path = fetch(:deploy_to)
    commit = `git -C #{repo} rev-parse HEAD`.strip
    id = Time.now.utc.strftime("%Y%m%dT%H%M%SZ") + "-" + commit[0, 7]
    tarball = "/tmp/cap-#{id}.tar.gz"
    # The same build as every tool (bench/lib.sh's bench_tarball).
    lib = File.expand_path("../../../lib.sh", __dir__)
    system("bash", "-c", ". \"$1\" && bench_tarball \"$2\" \"$3\"", "bash", lib, repo, tarball) or raise "build failed"
    rel = "#{path}/releases/#{id}"
    lb = roles(:balancer).first
    vadm = "varnishadm -T #{lb.hostname}:6082 -S #{farm}/varnish-secret"

    on roles(:app), in: :parallel do
      remote = "#{path}/.upload-#{id}.tar.gz"
      upload! tarball, remote
      execute :mkdir, "-p", rel
      execute :tar, "-xzf", remote, "-C", rel
      execute :rm, "-f", remote
      execute :mkdir, "-p", "#{rel}/var", "#{rel}/public"
      execute :ln, "-sfn", "#{path}/shared/var/log", "#{rel}/var/log"
      execute :ln, "-sfn", "#{path}/shared/public/cache", "#{rel}/public/cache"
      execute :ln, "-sfn", "#{path}/shared/.env.local", "#{rel}/.env.local"
    end

    mark "migrate"
    on roles(:migrate) do
      within rel do
        execute :sh, "bin/console", "migrate"
      end
    end

    mark "roll"
    on roles(:app), in: :sequence, wait: 0 do |host|
      backend = host.properties.fetch(:backend)
      on(lb) { execute "#{vadm} backend.set_health '*.#{backend}' sick" }
      on(lb) do
        loop do
          n = capture("varnishstat -n #{farm}/varnish -1 -f 'VBE.*.#{backend}.conn' | awk '{s += $2} END {print s + 0}'")
          break if n.strip == "0"
          sleep 0.05
        end
      end
      execute "ln -sfn releases/#{id} #{path}/.current.tmp && mv -fT #{path}/.current.tmp #{path}/current"
      execute "rm -rf #{path}/shared/public/cache/*"
      loop do
        code = capture("curl -s -o /dev/null -w '%{http_code}' http://#{host.hostname}:8080/health")
        break if code.strip == "200"
        sleep 0.05
      end
      on(lb) { execute "#{vadm} backend.set_health '*.#{backend}' auto" }
      # As deploy does: wait until Varnish takes the host back.
      on(lb) do
        loop do
          rows = capture("#{vadm} backend.list '*.#{backend}'").lines.drop(1).map(&:downcase)
          break if rows.any? { |row| row.include?("healthy") && !row.include?("sick") }
          sleep 0.05
        end
      end
    end

    mark "finish"
    on(lb) { execute "#{vadm} ban req.url '~' ." }
    File.delete(tarball)
    puts id
  end
end
